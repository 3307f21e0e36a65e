package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
)

func TestIngestDeliversEveryLineOnce(t *testing.T) {
	tests := []struct {
		name      string
		aggregate bool
		manifest  bool
		plain     bool
		lines     int
	}{
		{name: "aggregated gzip with manifest", aggregate: true, manifest: true, lines: 8000},
		{name: "plain records gzip", lines: 3_000},
		{name: "uncompressed object", aggregate: true, plain: true, lines: 2_000},
		{name: "empty file", aggregate: true, manifest: true, lines: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ingest.Config{Aggregate: tt.aggregate, CheckpointLines: 1000}
			var m *ingesttest.Manifest
			if tt.manifest {
				m = ingesttest.NewManifest()
				cfg.Manifest = m
			}
			f := newFixture(t, cfg)
			ref := f.put("cf/E1.2024-05-01-10.a.gz", tt.lines, 1)
			if tt.plain {
				ref.Key = "cf/E1.2024-05-01-10.a.log"
				ref.ETag = f.s3.Put("logs", ref.Key, ingesttest.LogFile(hour, tt.lines, 1))
			}
			res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != int64(tt.lines) || res.EndLine != tt.lines+2 || res.BadLines != 0 || res.Malformed != 0 {
				t.Fatalf("result %+v, want %d records through line %d", res, tt.lines, tt.lines+2)
			}
			ids := f.ids(t)
			want(t, ids, 1, 0, tt.lines, 1)
			if len(ids) != tt.lines {
				t.Fatalf("%d distinct lines written, want %d", len(ids), tt.lines)
			}
			if tt.aggregate && tt.lines > 0 && f.k.Count()*5 > tt.lines {
				t.Fatalf("%d Kinesis records for %d lines: not aggregated", f.k.Count(), tt.lines)
			}
			if m != nil {
				e := m.Entries()[ref.URL()]
				if e.State != ingest.StateDone || e.Line != tt.lines+2 || e.Records != int64(tt.lines) || e.ETag != ref.ETag {
					t.Fatalf("manifest entry %+v, want done at line %d", e, tt.lines+2)
				}
			}
		})
	}
}

func TestIngestStartLine(t *testing.T) {
	f := newFixture(t, ingest.Config{Aggregate: true})
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 1000, 2)
	// Lines 1-2 are headers: StartLine 500 skips data lines 0..497.
	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{StartLine: 500})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumeSkipped != 498 || res.Records != 502 || res.StartLine != 500 {
		t.Fatalf("result %+v, want 498 skipped and 502 sent", res)
	}
	ids := f.ids(t)
	want(t, ids, 2, 498, 1000, 1)
	if len(ids) != 502 {
		t.Fatalf("%d lines written, want 502", len(ids))
	}
}

func TestIngestCorruptFile(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	gz := ingesttest.Gzip(ingesttest.LogFile(hour, 5000, 3))
	key := "cf/E1.2024-05-01-10.corrupt.gz"
	etag := f.s3.Put("logs", key, gz[:len(gz)*2/3])
	ref := ingest.ObjectRef{Bucket: "logs", Key: key, ETag: etag}

	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
	var fe *ingest.FileError
	if !errors.As(err, &fe) || !errors.Is(err, cloudfront.ErrCorrupt) {
		t.Fatalf("error %v, want a *FileError wrapping cloudfront.ErrCorrupt", err)
	}
	if fe.URL != "s3://logs/"+key || fe.Line < 1000 || fe.Line >= 5002 {
		t.Fatalf("error names %s at line %d, want the key and the line reached", fe.URL, fe.Line)
	}
	if ingest.Retryable(err) {
		t.Fatal("a corrupt file is reported retryable")
	}
	// Every complete line before the damage was sent and is recorded.
	ids := f.ids(t)
	want(t, ids, 3, 0, fe.Line-2, 1)
	if len(ids) != fe.Line-2 || res.EndLine != fe.Line {
		t.Fatalf("%d lines written, end line %d, line reached %d", len(ids), res.EndLine, fe.Line)
	}
	e := m.Entries()[ref.URL()]
	if e.State != ingest.StateFailed || e.Line != fe.Line || e.Error == "" {
		t.Fatalf("manifest entry %+v, want failed at line %d with the error", e, fe.Line)
	}
	// A rerun resumes at the offset and fails again without re-sending.
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{}); !errors.Is(err, cloudfront.ErrCorrupt) {
		t.Fatalf("rerun: %v", err)
	}
	if got := f.ids(t); len(got) != len(ids) {
		t.Fatalf("rerun wrote %d lines again", len(got)-len(ids))
	}
}

func TestIngestCutConnectionResumes(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m, CheckpointLines: 500})
	ref := f.put("cf/E1.2024-05-01-10.cut.gz", 8000, 4)
	var mu sync.Mutex
	cuts := 0
	f.s3.CutAfter = func(_, _ string) int {
		mu.Lock()
		defer mu.Unlock()
		cuts++
		if cuts == 1 {
			return int(ref.Size / 2)
		}
		return -1
	}
	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
	if !errors.Is(err, ingesttest.ErrCut) || !ingest.Retryable(err) || errors.Is(err, cloudfront.ErrCorrupt) {
		t.Fatalf("error %v, want the retryable connection error", err)
	}
	e := m.Entries()[ref.URL()]
	if e.State != ingest.StateFailed || e.Line != res.EndLine || e.Line < 100 {
		t.Fatalf("entry %+v after the cut, want failed at line %d", e, res.EndLine)
	}
	res2, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.StartLine != res.EndLine || res2.Records+res.Records != 8000 {
		t.Fatalf("rerun %+v after %+v: want it to start at the offset and send the rest", res2, res)
	}
	ids := f.ids(t)
	want(t, ids, 4, 0, 8000, 1)
}

// checkingManifest checks, at every write, that the offset is confirmed
// (every line up to it is in the stream) and how much a crash just before
// the write would re-send: the lines written beyond the last recorded
// offset.
type checkingManifest struct {
	*ingesttest.Manifest
	t        *testing.T
	f        *fixture
	seed     uint64
	mu       sync.Mutex
	recorded int // data lines up to the recorded offset
	maxDup   int
	writes   int
}

func (c *checkingManifest) check(line int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.f.ids(c.t)
	for i := 0; i < line-2; i++ {
		if ids[ingesttest.RequestID(c.seed, i)] == 0 {
			c.t.Errorf("offset %d recorded before line %d was confirmed", line, i+3)
			return
		}
	}
	c.maxDup = max(c.maxDup, len(ids)-c.recorded)
	c.recorded = max(line-2, 0)
	c.writes++
}

func (c *checkingManifest) Checkpoint(ctx context.Context, url, etag, owner string, line int, records int64) error {
	c.check(line)
	return c.Manifest.Checkpoint(ctx, url, etag, owner, line, records)
}

func (c *checkingManifest) Finish(ctx context.Context, e ingest.Entry) error {
	c.check(e.Line)
	return c.Manifest.Finish(ctx, e)
}

func TestIngestRecordsOnlyConfirmedOffsets(t *testing.T) {
	const lines, ckLines = 10_000, 500
	cm := &checkingManifest{Manifest: ingesttest.NewManifest(), t: t, seed: 5}
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: cm, CheckpointLines: ckLines, CheckpointInterval: time.Hour})
	cm.f = f
	// Throttle a third of the entries, so records are confirmed out of
	// order across shards and calls.
	var mu sync.Mutex
	f.k.EntryError = func(call, entry int, _ string) string {
		mu.Lock()
		defer mu.Unlock()
		if (call+entry)%3 == 0 && call%2 == 0 {
			return "ProvisionedThroughputExceededException"
		}
		return ""
	}
	ref := f.put("cf/E1.2024-05-01-10.a.gz", lines, 5)
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	want(t, f.ids(t), 5, 0, lines, 1)
	if cm.writes < lines/ckLines/2 {
		t.Fatalf("%d manifest writes for %d lines at checkpoint_lines %d", cm.writes, lines, ckLines)
	}
	if cm.maxDup > 2*ckLines {
		t.Fatalf("a crash could re-send %d lines, more than 2×checkpoint_lines (%d)", cm.maxDup, 2*ckLines)
	}
	t.Logf("%d checkpoints; a crash would have re-sent at most %d lines (bound %d)", cm.writes, cm.maxDup, 2*ckLines)
}

func TestIngestRecordFailureStopsTheOffset(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m, CheckpointLines: 500})
	var mu sync.Mutex
	failing := true
	f.k.EntryError = func(call, entry int, _ string) string {
		mu.Lock()
		defer mu.Unlock()
		if failing && call == 3 && entry == 0 {
			return "KMSAccessDeniedException" // permanent: the producer gives up on it
		}
		return ""
	}
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 10_000, 6)
	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
	if err == nil || !ingest.Retryable(err) {
		t.Fatalf("error %v, want a retryable failure", err)
	}
	if res.EndLine >= 10_002 {
		t.Fatalf("offset %d passed a record that was never written", res.EndLine)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	res2, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.StartLine != res.EndLine {
		t.Fatalf("rerun started at %d, want %d", res2.StartLine, res.EndLine)
	}
	want(t, f.ids(t), 6, 0, 10_000, 2) // nothing lost; lines after the failed one may be twice
}

func TestIngestManifestSkipsAndRestarts(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 300, 7)
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ref     ingest.ObjectRef
		skipped bool
		gets    int
	}{
		{name: "done, ETag known: not even read", ref: ref, skipped: true, gets: 1},
		{name: "done, ETag from GetObject", ref: ingest.ObjectRef{Bucket: "logs", Key: ref.Key}, skipped: true, gets: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.in.Ingest(ctxT(t), tt.ref, ingest.FileOptions{})
			if err != nil || res.Skipped != tt.skipped {
				t.Fatalf("result %+v, %v; want skipped %v", res, err, tt.skipped)
			}
			if g := f.s3.Gets("logs", ref.Key); g != tt.gets {
				t.Fatalf("%d GetObject calls, want %d", g, tt.gets)
			}
		})
	}
	t.Run("replaced object starts over", func(t *testing.T) {
		ref2 := f.put(ref.Key, 200, 8)
		res, err := f.in.Ingest(ctxT(t), ref2, ingest.FileOptions{})
		if err != nil || res.Skipped || res.StartLine != 0 || res.Records != 200 {
			t.Fatalf("result %+v, %v; want all 200 lines of the new object", res, err)
		}
		want(t, f.ids(t), 8, 0, 200, 1)
	})
	t.Run("listed ETag is stale", func(t *testing.T) {
		stale := ref // the first version's ETag; the object is now the second
		stale.ETag = "0123"
		_, err := f.in.Ingest(ctxT(t), stale, ingest.FileOptions{})
		if err == nil || !ingest.Retryable(err) {
			t.Fatalf("error %v, want a retryable precondition failure", err)
		}
	})
}

func TestIngestStopReadingAtResumes(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 3000, 9)
	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{StopReadingAt: time.Now().Add(-time.Second)})
	if !errors.Is(err, ingest.ErrInterrupted) || !ingest.Retryable(err) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	e := m.Entries()[ref.URL()]
	if e.State != ingest.StatePending || e.Line != res.EndLine || res.Records == 0 || res.Records >= 3000 {
		t.Fatalf("entry %+v, result %+v: want pending at the confirmed offset", e, res)
	}
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	want(t, f.ids(t), 9, 0, 3000, 1)
}

func TestIngestCanceledContext(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	f.k.Hold = make(chan struct{}) // PutRecords waits: records stay in flight
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 8000, 10)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(); close(f.k.Hold) })
	res, err := f.in.Ingest(ctx, ref, ingest.FileOptions{})
	if !errors.Is(err, ingest.ErrInterrupted) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	// The records in flight at the cancel were still confirmed and recorded.
	if e := m.Entries()[ref.URL()]; e.Line != res.EndLine || e.State != ingest.StatePending {
		t.Fatalf("entry %+v, result %+v", e, res)
	}
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	want(t, f.ids(t), 10, 0, 8000, 1)
}

func TestIngestProgress(t *testing.T) {
	f := newFixture(t, ingest.Config{Aggregate: true, ProgressLines: 100})
	ref := f.put("cf/E1.2024-05-01-10.a.gz", 1000, 11)
	var got []ingest.FileProgress
	if _, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{Progress: func(p ingest.FileProgress) { got = append(got, p) }}); err != nil {
		t.Fatal(err)
	}
	if len(got) < 9 {
		t.Fatalf("%d progress calls for 1,000 lines every 100", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Line < got[i-1].Line || got[i].Bytes < got[i-1].Bytes || got[i].Records < got[i-1].Records {
			t.Fatalf("progress went back: %+v then %+v", got[i-1], got[i])
		}
	}
	last := got[len(got)-1]
	if last.Line != 1002 || last.Records != 1000 || last.Bytes != ref.Size || last.URL != ref.URL() {
		t.Fatalf("last progress %+v, want line 1002, 1000 records, %d bytes", last, ref.Size)
	}
}

// TestIngestUnusableHeaderFailsTheFile: a #Fields header the parser cannot
// use (here one naming timestamp wrongly spelt, and an RTMP log's) makes
// every line after it unreadable. The file must fail, permanently, and not
// be recorded as done with nothing sent.
func TestIngestUnusableHeaderFailsTheFile(t *testing.T) {
	tests := []struct {
		name, header string
		want         error
	}{
		{"no time field", "#Fields: timestmp c-ip sc-status cs-uri-stem", cloudfront.ErrBadLayout},
		{"rtmp log", "#Fields: date time x-edge-location c-ip x-event sc-bytes x-cf-status x-cf-client-id cs-uri-stem cs-uri-query c-referrer x-page-url c-user-agent x-sname x-sname-query x-file-ext x-sid", cloudfront.ErrStreamingLog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ingesttest.NewManifest()
			f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
			body := "#Version: 1.0\n" + tt.header + "\n1575493351.123\t192.0.2.1\t200\t/a.jpg\n"
			key := "cf/E1.2024-05-01-10.header.gz"
			ref := ingest.ObjectRef{Bucket: "logs", Key: key, ETag: f.s3.Put("logs", key, ingesttest.Gzip([]byte(body)))}

			res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
			var fe *ingest.FileError
			if !errors.As(err, &fe) || !errors.Is(err, tt.want) || fe.Line != 2 {
				t.Fatalf("error %v, want a *FileError at line 2 wrapping %v", err, tt.want)
			}
			if ingest.Retryable(err) {
				t.Fatal("an unusable header is reported retryable: a retry reads the same header")
			}
			if res.Records != 0 || f.k.Count() != 0 {
				t.Fatalf("%d records sent", res.Records)
			}
			if e := m.Entries()[ref.URL()]; e.State != ingest.StateFailed || e.Error == "" {
				t.Fatalf("manifest entry %+v, want failed with the reason", e)
			}
			sum, err := f.in.IngestFiles(ctxT(t), []ingest.ObjectRef{ref}, ingest.RunOptions{Concurrency: 1})
			if err != nil || sum.Failed != 1 || sum.Done != 0 || sum.OK() {
				t.Fatalf("run summary %+v (%v), want the file counted failed", sum, err)
			}
		})
	}
}
