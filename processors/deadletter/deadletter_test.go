package deadletter

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

var t0 = time.Date(2024, 5, 1, 23, 59, 59, 0, time.UTC)

func failed(shard string, n int, stage string, err error) *processors.Message {
	m := &processors.Message{Record: worker.Record{StreamName: "events", ShardID: shard, SequenceNumber: fmt.Sprintf("49%054d", n),
		SubSequenceNumber: int64(n % 3), PartitionKey: "pk-" + fmt.Sprint(n), Data: []byte{0, 1, 2, byte(n), '\n', '"'}}}
	if err != nil {
		m.Fail(stage, 3, err)
	}
	return m
}

// arrived sets m's Kinesis arrival time to an hour before t0, in another
// zone (a line is in UTC).
func arrived(m *processors.Message) *processors.Message {
	m.Record.ArrivalTime = t0.Add(-time.Hour).In(time.FixedZone("y", -3600))
	return m
}

func decode(t *testing.T, r io.Reader) []Line {
	t.Helper()
	var out []Line
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewLine(t *testing.T) {
	tests := []struct {
		name string
		m    *processors.Message
		want Line
	}{
		{"failed", failed("shardId-1", 4, "cloudfront", errors.New("bad line")), Line{Stream: "events", ShardID: "shardId-1",
			SequenceNumber: fmt.Sprintf("49%054d", 4), SubSequenceNumber: 1, PartitionKey: "pk-4", Data: []byte{0, 1, 2, 4, '\n', '"'},
			Error: "bad line", Stage: "cloudfront", StageKind: StageProcessor, Attempts: 3, FailedAt: t0}},
		{"a sink's, with the arrival time", arrived(failed("shardId-1", 4, "", nil).FailedCopy("opensearch", 2, errors.New("mapper_parsing_exception"))),
			Line{Stream: "events", ShardID: "shardId-1", SequenceNumber: fmt.Sprintf("49%054d", 4), SubSequenceNumber: 1, PartitionKey: "pk-4",
				Data: []byte{0, 1, 2, 4, '\n', '"'}, Error: "mapper_parsing_exception", Stage: "opensearch", StageKind: StageSink, Attempts: 2,
				FailedAt: t0, ArrivalTime: t0.Add(-time.Hour)}},
		{"no failure recorded", failed("shardId-1", 4, "", nil), Line{Stream: "events", ShardID: "shardId-1",
			SequenceNumber: fmt.Sprintf("49%054d", 4), SubSequenceNumber: 1, PartitionKey: "pk-4", Data: []byte{0, 1, 2, 4, '\n', '"'},
			Error: "unknown", Stage: "unknown", FailedAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLine(tt.m, t0.In(time.FixedZone("x", 7200)))
			b, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if !bytes.Equal(b, w) {
				t.Fatalf("line\n%s\nwant\n%s", b, w)
			}
			if !strings.Contains(string(b), `"data_base64":"AAECBAoi"`) {
				t.Fatalf("data not base64 under data_base64: %s", b)
			}
		})
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	f, err := NewFile(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	f.now = func() time.Time { return t0 }
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				n := g*10 + i
				if err := f.DeadLetter(t.Context(), []*processors.Message{failed("shardId-1", n, "parse", fmt.Errorf("poison %d", n))}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	lines := decode(t, fh)
	if len(lines) != 40 {
		t.Fatalf("%d lines, want 40", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var n int
		fmt.Sscanf(l.Error, "poison %d", &n)
		if l.Data[3] != byte(n) || l.Stage != "parse" || l.Attempts != 3 || !l.FailedAt.Equal(t0) {
			t.Errorf("line %+v", l)
		}
		seen[l.SequenceNumber] = true
	}
	if len(seen) != 40 {
		t.Fatalf("%d distinct records, want 40", len(seen))
	}
}

func TestFileOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, want string
	}{
		{"ok", "path: " + filepath.Join(dir, "x.ndjson"), ""},
		{"no path", "{}", "path is required"},
		{"no directory", "path: " + filepath.Join(dir, "nope", "x.ndjson"), "does not exist"},
		{"unknown key", "path: x\nsync: true", "sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := FileFromConfig(t.Context(), processors.NewOptions("pipeline.dead_letter", "", doc.Content[0]), processors.Deps{})
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

type apiErr struct {
	code   string
	status int
}

func (e *apiErr) Error() string                 { return fmt.Sprintf("api error %s: %d", e.code, e.status) }
func (e *apiErr) ErrorCode() string             { return e.code }
func (e *apiErr) ErrorMessage() string          { return e.code }
func (e *apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }
func (e *apiErr) HTTPStatusCode() int           { return e.status }

// fakeS3 stores objects and honours If-None-Match: *.
type fakeS3 struct {
	// S3Client completes processors.S3Client for Deps; the dead-letter
	// writer calls only PutObject, which fakeS3 implements.
	processors.S3Client

	mu      sync.Mutex
	objects map[string][]byte
	calls   int
	fail    func(call int) error
}

func (f *fakeS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.fail != nil {
		if err := f.fail(f.calls); err != nil {
			return nil, err
		}
	}
	key := aws.ToString(in.Key)
	if _, ok := f.objects[key]; ok && aws.ToString(in.IfNoneMatch) == "*" {
		return nil, &apiErr{"PreconditionFailed", 412}
	}
	b, _ := io.ReadAll(in.Body)
	f.objects[key] = b
	return &s3.PutObjectOutput{}, nil
}

func (f *fakeS3) lines(t *testing.T) map[string][]Line {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]Line{}
	for k, b := range f.objects {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = decode(t, zr)
	}
	return out
}

func newS3(t *testing.T, f *fakeS3) *S3 {
	t.Helper()
	d, err := NewS3(f, S3Options{Bucket: "archive"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return t0 }
	d.retry.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	d.retry.Min, d.retry.Max = time.Millisecond, time.Millisecond
	return d
}

func TestS3Groups(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{}}
	d := newS3(t, f)
	in := []*processors.Message{
		failed("shardId-1", 1, "parse", errors.New("a")),
		failed("shardId-2", 2, "parse", errors.New("b")),
		failed("shardId-1", 3, "opensearch", errors.New("c")),
		failed("shardId-1", 4, "parse", errors.New("d")),
	}
	if err := d.DeadLetter(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	got := f.lines(t)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantPrefixes := []string{
		"dead-letter/dt=2024-05-01/shardId-1/" + fmt.Sprintf("49%054d", 1) + "-1-parse-",
		"dead-letter/dt=2024-05-01/shardId-1/" + fmt.Sprintf("49%054d", 3) + "-0-opensearch-",
		"dead-letter/dt=2024-05-01/shardId-2/" + fmt.Sprintf("49%054d", 2) + "-2-parse-",
	}
	if len(keys) != len(wantPrefixes) {
		t.Fatalf("keys %v", keys)
	}
	for i, k := range keys {
		if !strings.HasPrefix(k, wantPrefixes[i]) || !strings.HasSuffix(k, ".ndjson.gz") {
			t.Errorf("key %s, want %s<digest>.ndjson.gz", k, wantPrefixes[i])
		}
	}
	if ls := got[keys[0]]; len(ls) != 2 || ls[0].Error != "a" || ls[1].Error != "d" {
		t.Errorf("shard 1 parse object holds %+v", ls)
	}

	// The same failures again (a replay): same keys, nothing new, success.
	calls := f.calls
	if err := d.DeadLetter(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if len(f.lines(t)) != 3 || f.calls != calls+3 {
		t.Fatalf("replay: %d objects after %d calls", len(f.objects), f.calls-calls)
	}
	// Another set with the same first record: another key.
	if err := d.DeadLetter(t.Context(), in[:1]); err != nil {
		t.Fatal(err)
	}
	if len(f.objects) != 4 {
		t.Fatalf("%d objects, want 4: a different set must not be lost to a 412", len(f.objects))
	}
	// The same record failing again at the same stage for another
	// reason (a fix that did not suffice): stored beside the first.
	again := failed("shardId-1", 1, "parse", errors.New("a, differently"))
	if err := d.DeadLetter(t.Context(), []*processors.Message{again}); err != nil {
		t.Fatal(err)
	}
	if len(f.objects) != 5 {
		t.Fatalf("%d objects, want 5: a new reason must not be lost to a 412", len(f.objects))
	}
}

// The key's digest covers each record's position, stage and reason.
func TestKeyDigest(t *testing.T) {
	key := func(ms ...*processors.Message) string { return Key("dl/", t0, ms) }
	a := failed("shardId-1", 1, "parse", errors.New("bad"))
	tests := []struct {
		name string
		same bool
		m    *processors.Message
	}{
		{"the same failure again", true, failed("shardId-1", 1, "parse", errors.New("bad"))},
		{"another reason", false, failed("shardId-1", 1, "parse", errors.New("worse"))},
		{"another stage", false, failed("shardId-1", 1, "cloudfront", errors.New("bad"))},
		{"another record", false, failed("shardId-1", 2, "parse", errors.New("bad"))},
	}
	for _, tt := range tests {
		if got := key(tt.m) == key(a); got != tt.same {
			t.Errorf("%s: same key = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func TestS3Errors(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(call int) error
		permanent bool
		ok        bool
	}{
		{"503 then ok", func(c int) error {
			if c < 3 {
				return &apiErr{"ServiceUnavailable", 503}
			}
			return nil
		}, false, true},
		{"connection refused then ok", func(c int) error {
			if c == 1 {
				return errors.New("dial tcp: connection refused")
			}
			return nil
		}, false, true},
		// The issue 12 review: this writer's own copy of the S3
		// classifier treated these as permanent, so a dead letter
		// failed its shard where the S3 sink would have retried.
		{"token refresh required then ok", func(c int) error {
			if c < 3 {
				return &apiErr{"TokenRefreshRequired", 400}
			}
			return nil
		}, false, true},
		{"internal error then ok", func(c int) error {
			if c < 3 {
				return &apiErr{"InternalError", 200}
			}
			return nil
		}, false, true},
		{"a malformed request", func(int) error { return &apiErr{"InvalidArgument", 400} }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeS3{objects: map[string][]byte{}, fail: tt.fail}
			d := newS3(t, f)
			err := d.DeadLetter(t.Context(), []*processors.Message{failed("shardId-1", 1, "parse", errors.New("x"))})
			if tt.ok {
				if err != nil || len(f.objects) != 1 {
					t.Fatalf("err %v, %d objects", err, len(f.objects))
				}
				return
			}
			if err == nil || processors.IsPermanent(err) != tt.permanent {
				t.Fatalf("err %v, want permanent=%v", err, tt.permanent)
			}
		})
	}
	// AccessDenied and NoSuchBucket are an operator's to fix: the writer
	// keeps retrying (the shard waits: its records have nowhere else to
	// go), reports the shard as unable to write, and stores the dead
	// letters once the bucket is right.
	for _, code := range []string{"AccessDenied", "NoSuchBucket"} {
		t.Run(code+" waits and is reported", func(t *testing.T) {
			var refuse atomic.Bool
			refuse.Store(true)
			f := &fakeS3{objects: map[string][]byte{}, fail: func(int) error {
				if refuse.Load() {
					return &apiErr{code, 403}
				}
				return nil
			}}
			d := newS3(t, f)
			msgs := []*processors.Message{failed("shardId-1", 1, "parse", errors.New("x"))}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
			defer cancel()
			if err := d.DeadLetter(ctx, msgs); !errors.Is(err, context.DeadlineExceeded) || processors.IsPermanent(err) {
				t.Fatalf("err %v, want retries until the context ends", err)
			}
			if st := d.State(); st.CannotWrite != 1 || !strings.Contains(st.LastError, code) {
				t.Fatalf("state %+v, want one shard that cannot write", st)
			}
			refuse.Store(false)
			if err := d.DeadLetter(t.Context(), msgs); err != nil || len(f.objects) != 1 {
				t.Fatalf("err %v, %d objects", err, len(f.objects))
			}
			if st := d.State(); st.Stalled != 0 {
				t.Fatalf("state after recovery %+v", st)
			}
		})
	}
	t.Run("retries until the context ends", func(t *testing.T) {
		f := &fakeS3{objects: map[string][]byte{}, fail: func(int) error { return &apiErr{"InternalError", 500} }}
		d := newS3(t, f)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		if err := d.DeadLetter(ctx, []*processors.Message{failed("shardId-1", 1, "parse", errors.New("x"))}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's", err)
		}
	})
}

func TestS3Options(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{}}
	tests := []struct {
		name, yaml string
		deps       processors.Deps
		want       string
	}{
		{"ok", "bucket: b", processors.Deps{S3: f}, ""},
		{"prefix", "bucket: b\nprefix: dl/", processors.Deps{S3: f}, ""},
		{"no bucket", "prefix: dl/", processors.Deps{S3: f}, "bucket is required"},
		{"bad prefix", "bucket: b\nprefix: dl", processors.Deps{S3: f}, "prefix"},
		{"unknown key", "bucket: b\nregion: x", processors.Deps{S3: f}, "region"},
		{"no client", "bucket: b", processors.Deps{}, "Deps.S3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := S3FromConfig(t.Context(), processors.NewOptions("pipeline.dead_letter", "", doc.Content[0]), tt.deps)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	r := processors.NewRegistry()
	Register(r)
	for _, name := range []string{TypeS3, TypeFile} {
		if _, err := r.DeadLetter(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Defect 4: dead-letter files hold raw records and were created 0644. They
// are created 0600, and an existing file that others can read is made
// private at the next write.
func TestFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dead.ndjson")
	f, err := NewFile(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DeadLetter(t.Context(), []*processors.Message{failed("s", 1, "parse", errors.New("bad"))}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new dead-letter file: %v %v, want mode 0600", st.Mode(), err)
	}
	old := filepath.Join(dir, "old.ndjson")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ = NewFile(FileOptions{Path: old})
	if err := f.DeadLetter(t.Context(), []*processors.Message{failed("s", 2, "parse", errors.New("bad"))}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(old); st.Mode().Perm() != 0o600 {
		t.Fatalf("existing dead-letter file left %v", st.Mode())
	}
}

// A line carries the event of a parsed record (the replay keeps its id)
// and says when the pipeline redacted it.
func TestLineCarriesTheEventAndRedaction(t *testing.T) {
	m := failed("s", 7, "opensearch", errors.New("mapper_parsing_exception"))
	m.Parsed, m.Redacted = true, true
	m.Event.EventID, m.Event.EventTime, m.Event.ClientIP = "ev-7", t0, "203.0.113.0"
	b, err := json.Marshal(NewLine(m, t0))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Event struct {
			EventID  string `json:"event_id"`
			ClientIP string `json:"client_ip"`
		} `json:"event"`
		Redacted bool `json:"redacted"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Event.EventID != "ev-7" || back.Event.ClientIP != "203.0.113.0" || !back.Redacted {
		t.Fatalf("line %s: %v", b, err)
	}
	if b, _ := json.Marshal(NewLine(failed("s", 8, "parse", errors.New("bad")), t0)); bytes.Contains(b, []byte(`"event"`)) || bytes.Contains(b, []byte(`"redacted"`)) {
		t.Fatalf("an unparsed, unredacted record's line has event or redacted: %s", b)
	}
}

// TestS3RetryWaits pins the waits between tries of a failing put: from
// 100ms doubling to 10s, each drawn in [d/2, 3d/2).
func TestS3RetryWaits(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{}, fail: func(c int) error {
		if c <= 9 {
			return &apiErr{"SlowDown", 503}
		}
		return nil
	}}
	d, err := NewS3(f, S3Options{Bucket: "archive"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	d.retry.Rand = func(int64) int64 { return 0 } // the shortest draw
	d.retry.Sleep = func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }
	if err := d.DeadLetter(t.Context(), []*processors.Message{failed("shardId-1", 1, "parse", errors.New("x"))}); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}
