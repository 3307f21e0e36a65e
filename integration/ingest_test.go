package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// ingestStack is a bucket, a 4-shard stream and a manifest table name on
// the local stack, for one test.
type ingestStack struct {
	e      testenv.Endpoints
	kc     *kinesis.Client
	db     *dynamodb.Client
	s3     *s3.Client
	bucket string
	stream string
	table  string
	// lines holds, per uploaded key, the data lines a reader of the stream
	// must find (for a corrupt file: every line it had before the damage).
	lines map[string][]string
	gz    int64 // gzipped bytes uploaded
}

func newIngestStack(t *testing.T) *ingestStack {
	t.Helper()
	e := testenv.Require(t, "kinesis", "dynamodb", "s3")
	st := &ingestStack{e: e, kc: testenv.Kinesis(e), db: testenv.DynamoDB(e), s3: testenv.S3(e),
		bucket: testenv.Name(t, "ingest"), stream: testenv.Name(t, "ingest"), table: testenv.Name(t, "ingest-manifest"),
		lines: map[string][]string{}}
	ctx := testenv.Context(t, time.Minute)
	if _, err := st.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &st.bucket}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	createStream(t, st.kc, st.stream, 4)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = st.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &st.table})
		// gofakes3 keeps objects on disk: remove them.
		for key := range st.lines {
			_, _ = st.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &st.bucket, Key: aws.String(key)})
		}
		_, _ = st.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &st.bucket})
	})
	return st
}

// upload stores a file; valid is the plain text whose data lines must
// reach the stream (a prefix of it for a corrupt file).
func (st *ingestStack) upload(t *testing.T, key string, data []byte, valid []byte) {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	if _, err := st.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &st.bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	st.gz += int64(len(data))
	var lines []string
	for _, l := range strings.Split(string(valid), "\n") {
		if l != "" && l[0] != '#' {
			lines = append(lines, l)
		}
	}
	st.lines[key] = lines
}

// uploadFixture uploads the CloudFront fixture, gzipped.
func (st *ingestStack) uploadFixture(t *testing.T, key string) {
	t.Helper()
	raw, err := os.ReadFile(cloudfrontFixture)
	if err != nil {
		t.Fatal(err)
	}
	st.upload(t, key, ingesttest.Gzip(raw), raw)
}

// streamLines reads every shard from TRIM_HORIZON, de-aggregates, and
// counts each log line (a record's last line: a #Fields header may
// precede it). kinesis-local serves about 1.5 MB/s of record data, so
// this takes seconds per 10 MB.
func (st *ingestStack) streamLines(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, u := range readStream(t, st.kc, st.stream) {
		out[string(u.Data[bytes.LastIndexByte(u.Data, '\n')+1:])]++
	}
	return out
}

// manifest returns the manifest's entries by URL.
func (st *ingestStack) manifest(t *testing.T) map[string]ingest.Entry {
	t.Helper()
	m := ingest.NewDynamoManifest(st.db, st.table)
	out := map[string]ingest.Entry{}
	ctx := testenv.Context(t, time.Minute)
	for key := range st.lines {
		e, err := m.Get(ctx, "s3://"+st.bucket+"/"+key)
		if errors.Is(err, ingest.ErrNotFound) {
			continue
		}
		var rnf *ddbtypes.ResourceNotFoundException
		if errors.As(err, &rnf) {
			return out // no table yet
		}
		if err != nil {
			t.Fatal(err)
		}
		out[key] = e
	}
	return out
}

// env is the binary's environment on the local stack.
func (st *ingestStack) env(extra ...string) []string {
	env := append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_KINESIS="+st.e.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+st.e.DynamoDB, "AWS_ENDPOINT_URL_S3="+st.e.S3,
		"LEASEHOLD_STREAM_NAME="+st.stream, "LEASEHOLD_INGEST_MANIFEST_TABLE="+st.table, "LEASEHOLD_LOG_FORMAT=json",
		"LEASEHOLD_INGEST_CONCURRENCY=4",
	)
	return append(env, extra...) // later entries win
}

// generatedFile is a 33-field log file of n lines for an hour.
func generatedFile(h time.Time, n int, seed uint64) (plain, gz []byte) {
	plain = ingesttest.LogFile(h, n, seed)
	return plain, ingesttest.Gzip(plain)
}

// TestIngestBackfill backfills a prefix holding the CloudFront fixture, 50
// generated hourly files, one file of more than 20 MB uncompressed, a
// corrupt (truncated) file and a file outside the time range, with the
// real binary at concurrency 4. Reading the stream back (all shards,
// TRIM_HORIZON, de-aggregated) must give every valid line exactly once;
// the corrupt file is reported with its key and line, and the exit code
// says a file failed. It logs MB/s of gzipped logs, per CPU-second of the
// (race-instrumented) binary.
func TestIngestBackfill(t *testing.T) {
	start := time.Now()
	st := newIngestStack(t)
	st.uploadFixture(t, "cf/E1EXAMPLE.2019-12-04-21.fixture.gz")
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		h := base.Add(time.Duration(i) * time.Hour)
		plain, gz := generatedFile(h, 200+i*4, uint64(1000+i))
		st.upload(t, fmt.Sprintf("cf/E1EXAMPLE.%s.%04x.gz", h.Format("2006-01-02-15"), i), gz, plain)
	}
	bigPlain, bigGz := generatedFile(base.Add(60*time.Hour), 47_000, 7)
	if len(bigPlain) <= 20<<20 {
		t.Fatalf("big file is %d bytes, want more than 20 MB", len(bigPlain))
	}
	st.upload(t, "cf/E1EXAMPLE.2024-05-03-12.big.gz", bigGz, bigPlain)
	badPlain, badGz := generatedFile(base.Add(61*time.Hour), 3000, 8)
	cut := badGz[:len(badGz)*3/5]
	corruptKey := "cf/E1EXAMPLE.2024-05-03-13.corrupt.gz"
	st.upload(t, corruptKey, cut, nil) // expected lines: a prefix, checked below
	_, oldGz := generatedFile(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), 50, 9)
	st.upload(t, "cf/E1EXAMPLE.2019-01-01-00.old.gz", oldGz, nil) // outside --from

	t.Logf("uploaded %d files, %.1f MB gzipped (%v)", len(st.lines), float64(st.gz)/1e6, time.Since(start).Round(time.Millisecond))
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "backfill", "s3://"+st.bucket+"/cf/", "--from", "2019-12-01")
	cmd.Env = st.env()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	took := time.Since(began)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("backfill exited with %v, want exit code 1 for the corrupt file\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), ingestTail(stderr.String(), 3000))
	}
	out := stdout.String()
	t.Logf("summary:\n%s", out)
	for _, want := range []string{"52 done, 1 failed, 0 skipped", "1 outside the time range (54 listed)", "failed (permanent): ingest: s3://" + st.bucket + "/" + corruptKey + ": at line "} {
		if !strings.Contains(out, want) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}

	readAt := time.Now()
	got := st.streamLines(t)
	t.Logf("read the stream back in %v", time.Since(readAt).Round(time.Millisecond))
	expected := map[string]int{}
	for key, lines := range st.lines {
		if key == corruptKey {
			continue
		}
		for _, l := range lines {
			expected[l]++
		}
	}
	for l, n := range expected {
		if got[l] != n {
			t.Fatalf("line read %d times, want %d: %.120q", got[l], n, l)
		}
	}
	// The corrupt file: its lines up to the damage, exactly once, and the
	// line reached is in the report and the manifest.
	m := st.manifest(t)
	ce := m[corruptKey]
	reached := ce.Line
	if ce.State != ingest.StateFailed || reached < 3 || !strings.Contains(ce.Error, "corrupt") || !strings.Contains(out, fmt.Sprintf("at line %d:", reached)) {
		t.Fatalf("manifest entry of the corrupt file %+v; report:\n%s", ce, out)
	}
	badLines := strings.Split(strings.TrimSpace(string(badPlain)), "\n")[2:]
	for i, l := range badLines {
		if want := map[bool]int{true: 1, false: 0}[i < reached-2]; got[l] != want {
			t.Fatalf("corrupt file's line %d (reached %d) read %d times, want %d", i+3, reached, got[l], want)
		}
	}
	if extra := len(got) - len(expected) - (reached - 2); extra != 0 {
		t.Fatalf("%d distinct lines in the stream that were not uploaded (or the old file was not excluded)", extra)
	}
	for key, e := range m {
		if key != corruptKey && key != "cf/E1EXAMPLE.2019-01-01-00.old.gz" && e.State != ingest.StateDone {
			t.Fatalf("manifest entry of %s: %+v, want done", key, e)
		}
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	t.Logf("backfill (race-instrumented binary, local stack): %d files, %.1f MB gzipped, %d lines in %v: %.2f MB/s, %.0f lines/s; %.2f MB/s per CPU-second (%v CPU)",
		len(st.lines), float64(st.gz)/1e6, len(expected)+reached-2, took.Round(time.Millisecond), float64(st.gz)/1e6/took.Seconds(),
		float64(len(expected)+reached-2)/took.Seconds(), float64(st.gz)/1e6/cpu.Seconds(), cpu.Round(time.Millisecond))
}

// TestBackfillKillResume SIGKILLs a backfill once some files are done and
// others are part-way, then runs it again: files done before the kill are
// not sent again, a partial file resumes after its recorded offset (the
// lines up to it are in the stream exactly once), the rerun finishes the
// rest, and each file has at most 2×ingest.checkpoint_lines duplicates.
func TestBackfillKillResume(t *testing.T) {
	st := newIngestStack(t)
	const files, lines, ckLines = 12, 2000, 500
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range files {
		h := base.Add(time.Duration(i) * time.Hour)
		plain, gz := generatedFile(h, lines, uint64(2000+i))
		st.upload(t, fmt.Sprintf("cf/E2EXAMPLE.%s.%04x.gz", h.Format("2006-01-02-15"), i), gz, plain)
	}
	// A SIGKILL mid-request used to crash dynalite; the local stack's
	// preload now keeps it alive (internal/dev/devstack/loopback-preload.js).
	// The killed run's claims on the files it was reading go stale after
	// the claim duration; the rerun takes them over then.
	env := st.env("LEASEHOLD_INGEST_CHECKPOINT_LINES="+strconv.Itoa(ckLines), "LEASEHOLD_INGEST_CLAIM_DURATION=2s")
	run := exec.Command(binary, "backfill", "s3://"+st.bucket+"/cf/")
	run.Env = env
	var log1 bytes.Buffer
	run.Stdout, run.Stderr = &log1, &log1
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()

	// Kill once at least 3 files are done and some file is part-way with a
	// recorded offset, in its first half so that it cannot finish before
	// the signal lands.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			_ = run.Process.Kill()
			t.Fatalf("no moment with files done and a partial one; log:\n%s", ingestTail(log1.String(), 3000))
		}
		select {
		case err := <-exited:
			t.Fatalf("backfill finished (%v) before it could be killed; log:\n%s", err, ingestTail(log1.String(), 3000))
		default:
		}
		done, partial := 0, 0
		for _, e := range st.manifest(t) {
			switch {
			case e.State == ingest.StateDone:
				done++
			case e.Line > 0 && e.Line <= lines/2:
				partial++
			}
		}
		if done >= 3 && partial >= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	atKill := st.manifest(t)
	var doneAtKill, partialAtKill []string
	for key, e := range atKill {
		switch {
		case e.State == ingest.StateDone:
			doneAtKill = append(doneAtKill, key)
		case e.Line > 0:
			partialAtKill = append(partialAtKill, key)
		}
	}
	t.Logf("killed with %d files done and %d part-way (%d of %d begun)", len(doneAtKill), len(partialAtKill), len(atKill), files)

	rerun := exec.Command(binary, "backfill", "s3://"+st.bucket+"/cf/")
	rerun.Env = env
	var out2, log2 bytes.Buffer
	rerun.Stdout, rerun.Stderr = &out2, &log2
	if err := rerun.Run(); err != nil {
		t.Fatalf("rerun: %v\n%s\n%s", err, out2.String(), ingestTail(log2.String(), 3000))
	}
	if want := fmt.Sprintf("%d skipped (done before)", len(doneAtKill)); !strings.Contains(out2.String(), want) {
		t.Fatalf("rerun summary lacks %q:\n%s", want, out2.String())
	}
	if !strings.Contains(log2.String(), `"msg":"resuming file"`) {
		t.Fatalf("the rerun resumed no file; log:\n%s", ingestTail(log2.String(), 3000))
	}
	if len(partialAtKill) > 0 && !strings.Contains(out2.String(), "taken over after its claim went stale") {
		t.Fatalf("the rerun did not report taking over the killed run's files:\n%s", out2.String())
	}

	got := st.streamLines(t)
	totalDups := 0
	for key, ls := range st.lines {
		e := atKill[key]
		dups := 0
		for i, l := range ls {
			n := got[l]
			switch {
			case n == 0:
				t.Fatalf("%s line %d lost", key, i+3)
			case n > 1 && (e.State == ingest.StateDone || i+3 <= e.Line):
				t.Fatalf("%s line %d read %d times although recorded as sent (entry at kill %+v)", key, i+3, n, e)
			}
			dups += n - 1
		}
		if dups > 2*ckLines {
			t.Fatalf("%s: %d duplicate lines, more than 2×checkpoint_lines", key, dups)
		}
		totalDups += dups
	}
	for key, e := range st.manifest(t) {
		if e.State != ingest.StateDone || e.Records < lines {
			t.Fatalf("%s after the rerun: %+v", key, e)
		}
	}
	t.Logf("duplicates after the kill: %d lines in all (bound: 2×%d per file in progress)", totalDups, ckLines)
}

// s3EventDoc is an S3 ObjectCreated notification document as S3 sends it.
func s3EventDoc(bucket, key string, size int, etag string) string {
	return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
"eventTime":"2024-05-01T11:02:03.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
"requestParameters":{"sourceIPAddress":"10.0.0.1"},"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"logs","bucket":{"name":%q,"ownerIdentity":{"principalId":"A3NL1KOZZKExample"},
"arn":"arn:aws:s3:::%s"},"object":{"key":%q,"size":%d,"eTag":%q,"sequencer":"0055AED6DCD90281E5"}}}]}`,
		bucket, bucket, strings.ReplaceAll(url.QueryEscape(key), "%2F", "/"), size, etag)
}

// TestLambdaIngest invokes the Lambda handler with an S3 event document
// and with an SQS event wrapping one, against the local S3, Kinesis and
// DynamoDB, and finds each file's lines in the stream; a second delivery
// of the same event (S3 and SQS deliver at least once) sends nothing again.
func TestLambdaIngest(t *testing.T) {
	st := newIngestStack(t)
	st.uploadFixture(t, "cf/E1EXAMPLE.2019-12-04-21.fixture.gz")
	plain, gz := generatedFile(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), 5000, 42)
	st.upload(t, "cf/E1EXAMPLE.2024-05-01-10.sqs file.gz", gz, plain)

	m := ingest.NewDynamoManifest(st.db, st.table)
	ctx := testenv.Context(t, 2*time.Minute)
	if err := m.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(st.s3, st.kc, st.stream, ingest.Config{Aggregate: true, Manifest: m, Logger: zaptest.NewLogger(t, zaptestLevel())})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	h := ingest.NewHandler(in, zaptest.NewLogger(t, zaptestLevel()))

	head := func(key string) (int, string) {
		out, err := st.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &st.bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		return int(aws.ToInt64(out.ContentLength)), strings.Trim(aws.ToString(out.ETag), `"`)
	}
	size, etag := head("cf/E1EXAMPLE.2019-12-04-21.fixture.gz")
	direct := s3EventDoc(st.bucket, "cf/E1EXAMPLE.2019-12-04-21.fixture.gz", size, etag)
	size, etag = head("cf/E1EXAMPLE.2024-05-01-10.sqs file.gz")
	body := s3EventDoc(st.bucket, "cf/E1EXAMPLE.2024-05-01-10.sqs file.gz", size, etag)
	msg, _ := json.Marshal(map[string]any{"messageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78", "receiptHandle": "MessageReceiptHandle",
		"body": body, "attributes": map[string]string{"ApproximateReceiveCount": "1"}, "messageAttributes": map[string]any{},
		"md5OfBody": "7b270e59b47ff90a553787216d55d91d", "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cloudfront-logs", "awsRegion": "us-east-1"})
	sqsDoc := `{"Records":[` + string(msg) + `]}`

	for round := range 2 {
		invokeCtx, cancel := context.WithTimeout(ctx, 60*time.Second) // a Lambda's deadline
		out, err := h.Handle(invokeCtx, json.RawMessage(direct))
		if err != nil || out != nil {
			t.Fatalf("round %d: S3 event: %v, %v", round, out, err)
		}
		out, err = h.Handle(invokeCtx, json.RawMessage(sqsDoc))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		if string(b) != `{"batchItemFailures":null}` {
			t.Fatalf("round %d: SQS response %s, want no batch item failures", round, b)
		}
	}
	got := st.streamLines(t)
	for key, lines := range st.lines {
		want := map[string]int{}
		for _, l := range lines {
			want[l]++
		}
		for l, n := range want {
			if got[l] != n {
				t.Fatalf("%s: line read %d times, want %d: %.100q", key, got[l], n, l)
			}
		}
	}
}

// TestIngestManifestDynamoConformance runs the manifest state machine
// against the DynamoDB manifest on the local emulator, as
// TestFakeManifestConformance does against the fake.
func TestIngestManifestDynamoConformance(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	db := testenv.DynamoDB(e)
	ingesttest.RunManifestConformance(t, func(t *testing.T) ingest.Manifest {
		table := testenv.Name(t, "manifest")
		m := ingest.NewDynamoManifest(db, table)
		ctx := testenv.Context(t, 30*time.Second)
		if err := m.EnsureTable(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table})
		})
		return m
	})
}

func ingestTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestIngestCommandExitCodes runs `leasehold ingest` and `leasehold
// backfill` as a script would: 0 when every file was sent, 1 when one
// failed (with the summary naming it), 2 for usage and configuration
// mistakes, with a message naming the flag or key.
func TestIngestCommandExitCodes(t *testing.T) {
	st := newIngestStack(t)
	st.uploadFixture(t, "cf/E1EXAMPLE.2019-12-04-21.fixture.gz")
	ok := "s3://" + st.bucket + "/cf/E1EXAMPLE.2019-12-04-21.fixture.gz"
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantOut  string // in stdout or stderr
	}{
		{name: "one file", args: []string{"ingest", ok}, wantCode: 0, wantOut: "1 done, 0 failed"},
		{name: "missing file", args: []string{"ingest", ok, ok + ".missing"}, wantCode: 1, wantOut: "failed (permanent): ingest: " + ok + ".missing"},
		{name: "not an s3 url", args: []string{"ingest", "/tmp/x.gz"}, wantCode: 2, wantOut: "not an s3://bucket/key URL"},
		{name: "no file", args: []string{"ingest"}, wantCode: 2},
		{name: "bad --from", args: []string{"backfill", "s3://" + st.bucket + "/cf/", "--from", "yesterday"}, wantCode: 2, wantOut: "is not a time"},
		{name: "to before from", args: []string{"backfill", "s3://" + st.bucket + "/cf/", "--from", "2024-05-02", "--to", "2024-05-01"}, wantCode: 2, wantOut: "--to must be after --from"},
		{name: "bad key", args: []string{"backfill", "s3://" + st.bucket + "/cf/"}, env: []string{"LEASEHOLD_INGEST_CONCURRENCY=0"}, wantCode: 2, wantOut: "ingest.concurrency"},
		{name: "no manifest table", args: []string{"backfill", "s3://" + st.bucket + "/cf/"}, env: []string{"LEASEHOLD_INGEST_MANIFEST_TABLE="}, wantCode: 2, wantOut: "ingest.manifest_table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = st.env(tt.env...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("exit code %d, want %d with %q; output:\n%s", code, tt.wantCode, tt.wantOut, ingestTail(out.String(), 2000))
			}
		})
	}
}

// TestTwoConcurrentBackfills starts two `leasehold backfill` processes of
// the same prefix at the same moment, on the local S3, DynamoDB and
// Kinesis. Each file is claimed in the manifest by one of them; the other
// leaves it for the end of its run and finds it done. Both exit 0, every
// line is in the stream exactly once (nothing deduplicated), and every
// manifest entry ends done with no claim left.
func TestTwoConcurrentBackfills(t *testing.T) {
	st := newIngestStack(t)
	const files, lines = 10, 3000
	base := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	for i := range files {
		h := base.Add(time.Duration(i) * time.Hour)
		plain, gz := generatedFile(h, lines, uint64(3000+i))
		st.upload(t, fmt.Sprintf("cf/E3EXAMPLE.%s.%04x.gz", h.Format("2006-01-02-15"), i), gz, plain)
	}
	env := st.env("LEASEHOLD_INGEST_CONCURRENCY=2", "LEASEHOLD_INGEST_CHECKPOINT_LINES=500", "LEASEHOLD_INGEST_CLAIM_DURATION=3s")
	type result struct {
		out, log string
		err      error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			cmd := exec.Command(binary, "backfill", "s3://"+st.bucket+"/cf/")
			cmd.Env = env
			var out, log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &log
			err := cmd.Run()
			results[i] = result{out.String(), log.String(), err}
		})
	}
	wg.Wait()
	claimed := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("backfill %d: %v\n%s\n%s", i, r.err, r.out, ingestTail(r.log, 3000))
		}
		t.Logf("backfill %d:\n%s", i, r.out)
		if strings.Contains(r.out, "claims:") {
			claimed++
		}
	}
	if claimed == 0 {
		t.Log("the two runs never met on a file; the test proved less than it could")
	}
	got := st.streamLines(t)
	total := 0
	for key, ls := range st.lines {
		for i, l := range ls {
			if got[l] != 1 {
				t.Fatalf("%s line %d read %d times, want exactly once", key, i+3, got[l])
			}
		}
		total += len(ls)
	}
	if len(got) != total {
		t.Fatalf("%d distinct lines in the stream, %d uploaded", len(got), total)
	}
	for key, e := range st.manifest(t) {
		if e.State != ingest.StateDone || e.Owner != "" || e.Records != lines {
			t.Fatalf("%s: %+v, want done with %d records and no claim", key, e, lines)
		}
	}
}
