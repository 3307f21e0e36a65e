package ingesttest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/ingest"
)

// RunManifestConformance runs the manifest contract (the state machine of
// docs/INGEST.md) against the manifests newManifest returns; each subtest
// gets a fresh, empty one. The same suite runs against Manifest (unit
// tests) and the DynamoDB manifest on the local emulator (integration), so
// the fake cannot drift from the real semantics.
func RunManifestConformance(t *testing.T, newManifest func(t *testing.T) ingest.Manifest) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	const url = "s3://logs/cf/E1.2024-05-01-10.abc.gz"
	mustBegin := func(t *testing.T, m ingest.Manifest, etag string) ingest.Entry {
		t.Helper()
		e, err := m.Begin(ctx(t), url, etag)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		return e
	}
	mustGet := func(t *testing.T, m ingest.Manifest) ingest.Entry {
		t.Helper()
		e, err := m.Get(ctx(t), url)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return e
	}

	t.Run("EnsureTableConcurrent", func(t *testing.T) {
		m := newManifest(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() { errs <- m.EnsureTable(ctx(t)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("EnsureTable raced: %v", err)
			}
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		m := newManifest(t)
		if _, err := m.Get(ctx(t), url); !errors.Is(err, ingest.ErrNotFound) {
			t.Fatalf("Get of a missing entry: %v, want ErrNotFound", err)
		}
	})

	t.Run("BeginNewIsPendingAtZero", func(t *testing.T) {
		m := newManifest(t)
		e := mustBegin(t, m, "e1")
		if e.State != ingest.StatePending || e.Line != 0 || e.Attempts != 1 || e.ETag != "e1" || e.URL != url {
			t.Fatalf("new entry %+v", e)
		}
		if g := mustGet(t, m); g.State != ingest.StatePending || g.ETag != "e1" {
			t.Fatalf("read back %+v", g)
		}
	})

	t.Run("CheckpointThenResume", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		for _, line := range []int{100, 250, 250} {
			if err := m.Checkpoint(ctx(t), url, "e1", line, int64(line-2)); err != nil {
				t.Fatalf("Checkpoint %d: %v", line, err)
			}
		}
		if err := m.Checkpoint(ctx(t), url, "e1", 200, 198); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("Checkpoint going back: %v, want ErrConflict", err)
		}
		e := mustBegin(t, m, "e1") // a rerun after a crash
		if e.State != ingest.StatePending || e.Line != 250 || e.Records != 248 || e.Attempts != 2 {
			t.Fatalf("resumed entry %+v, want pending at line 250, attempt 2", e)
		}
	})

	t.Run("DoneIsSkippedAndFinal", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateDone, Line: 900, Records: 897, BadLines: 1}); err != nil {
			t.Fatal(err)
		}
		e := mustBegin(t, m, "e1")
		if e.State != ingest.StateDone || e.Line != 900 || e.Records != 897 || e.BadLines != 1 || e.Attempts != 1 {
			t.Fatalf("Begin of a done file: %+v, want it unchanged", e)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", 950, 1); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("Checkpoint of a done file: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateFailed, Error: "x"}); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("failing a done file: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateDone, Line: 900, Records: 897}); err != nil {
			t.Fatalf("finishing a done file again: %v", err)
		}
	})

	t.Run("FailedResumesAtItsLine", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Checkpoint(ctx(t), url, "e1", 40, 38); err != nil {
			t.Fatal(err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateFailed, Line: 60, Records: 58, Error: "corrupt"}); err != nil {
			t.Fatal(err)
		}
		if g := mustGet(t, m); g.State != ingest.StateFailed || g.Error != "corrupt" || g.Line != 60 {
			t.Fatalf("failed entry %+v", g)
		}
		e := mustBegin(t, m, "e1")
		if e.State != ingest.StatePending || e.Line != 60 || e.Error != "" || e.Attempts != 2 {
			t.Fatalf("retry of a failed file: %+v, want pending at line 60 without error", e)
		}
	})

	t.Run("NewETagStartsOver", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateDone, Line: 900, Records: 897}); err != nil {
			t.Fatal(err)
		}
		e := mustBegin(t, m, "e2")
		if e.State != ingest.StatePending || e.Line != 0 || e.Records != 0 || e.ETag != "e2" || e.Attempts != 1 {
			t.Fatalf("replaced object: %+v, want a fresh pending entry", e)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", 10, 10); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("checkpoint with the old ETag: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", State: ingest.StateDone}); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("finish with the old ETag: %v, want ErrConflict", err)
		}
	})

	t.Run("CheckpointWithoutBegin", func(t *testing.T) {
		m := newManifest(t)
		if err := m.Checkpoint(ctx(t), url, "e1", 10, 10); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("checkpoint of a missing entry: %v, want ErrConflict", err)
		}
	})
}
