package ingesttest

import (
	"context"
	"errors"
	"fmt"
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
	const runA, runB = "run-a", "run-b"
	mustBegin := func(t *testing.T, m ingest.Manifest, etag string) ingest.Entry {
		t.Helper()
		e, err := m.Begin(ctx(t), url, etag, runA, 0)
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
			if err := m.Checkpoint(ctx(t), url, "e1", runA, line, int64(line-2)); err != nil {
				t.Fatalf("Checkpoint %d: %v", line, err)
			}
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 200, 198); !errors.Is(err, ingest.ErrConflict) {
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
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateDone, Line: 900, Records: 897, BadLines: 1}); err != nil {
			t.Fatal(err)
		}
		e := mustBegin(t, m, "e1")
		if e.State != ingest.StateDone || e.Line != 900 || e.Records != 897 || e.BadLines != 1 || e.Attempts != 1 {
			t.Fatalf("Begin of a done file: %+v, want it unchanged", e)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 950, 1); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("Checkpoint of a done file: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateFailed, Error: "x"}); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("failing a done file: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateDone, Line: 900, Records: 897}); err != nil {
			t.Fatalf("finishing a done file again: %v", err)
		}
	})

	t.Run("FailedResumesAtItsLine", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 40, 38); err != nil {
			t.Fatal(err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateFailed, Line: 60, Records: 58, Error: "corrupt"}); err != nil {
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
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateDone, Line: 900, Records: 897}); err != nil {
			t.Fatal(err)
		}
		e := mustBegin(t, m, "e2")
		if e.State != ingest.StatePending || e.Line != 0 || e.Records != 0 || e.ETag != "e2" || e.Attempts != 1 {
			t.Fatalf("replaced object: %+v, want a fresh pending entry", e)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 10, 10); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("checkpoint with the old ETag: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateDone}); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("finish with the old ETag: %v, want ErrConflict", err)
		}
	})

	t.Run("CheckpointWithoutBegin", func(t *testing.T) {
		m := newManifest(t)
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 10, 10); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("checkpoint of a missing entry: %v, want ErrConflict", err)
		}
	})

	t.Run("OneRunHoldsTheClaim", func(t *testing.T) {
		m := newManifest(t)
		a := mustBegin(t, m, "e1")
		if a.Owner != runA || a.ClaimVersion == 0 {
			t.Fatalf("claimed entry %+v", a)
		}
		_, err := m.Begin(ctx(t), url, "e1", runB, 0)
		var ce *ingest.ClaimedError
		if !errors.As(err, &ce) || !errors.Is(err, ingest.ErrClaimed) || ce.Entry.Owner != runA || ce.Entry.ClaimVersion != a.ClaimVersion {
			t.Fatalf("second run's Begin: %v, want a ClaimedError naming %s at version %d", err, runA, a.ClaimVersion)
		}
		// A take-over at an old version fails once the owner renewed.
		if err := m.Renew(ctx(t), url, "e1", runA); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if _, err := m.Begin(ctx(t), url, "e1", runB, a.ClaimVersion); !errors.Is(err, ingest.ErrClaimed) {
			t.Fatalf("take-over at a version the owner renewed past: %v, want ErrClaimed", err)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runB, 10, 10); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("checkpoint by a run without the claim: %v, want ErrConflict", err)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 10, 10); err != nil {
			t.Fatalf("owner's checkpoint: %v", err)
		}
		again := mustBegin(t, m, "e1") // the owner may begin again
		if again.Owner != runA || again.Line != 10 {
			t.Fatalf("owner's second Begin: %+v", again)
		}
	})

	t.Run("StaleClaimTakenOverAndFenced", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 40, 38); err != nil {
			t.Fatal(err)
		}
		seen := mustGet(t, m)
		b, err := m.Begin(ctx(t), url, "e1", runB, seen.ClaimVersion)
		if err != nil || b.Owner != runB || b.Line != 40 || b.ClaimVersion == seen.ClaimVersion {
			t.Fatalf("take-over: %+v, %v; want runB at line 40 with a new version", b, err)
		}
		// The old owner, a zombie, can no longer write anything.
		if err := m.Renew(ctx(t), url, "e1", runA); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("zombie's Renew: %v, want ErrConflict", err)
		}
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 90, 88); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("zombie's checkpoint: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runA, State: ingest.StateDone, Line: 90}); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("zombie's Finish: %v, want ErrConflict", err)
		}
		if err := m.Release(ctx(t), url, "e1", runA); !errors.Is(err, ingest.ErrConflict) {
			t.Fatalf("zombie's Release: %v, want ErrConflict", err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runB, State: ingest.StateDone, Line: 100, Records: 98}); err != nil {
			t.Fatalf("new owner's Finish: %v", err)
		}
		if g := mustGet(t, m); g.State != ingest.StateDone || g.Owner != "" || g.Line != 100 {
			t.Fatalf("finished entry %+v, want done and unclaimed", g)
		}
	})

	t.Run("ReleaseLetsAnotherRunBegin", func(t *testing.T) {
		m := newManifest(t)
		mustBegin(t, m, "e1")
		if err := m.Checkpoint(ctx(t), url, "e1", runA, 25, 25); err != nil {
			t.Fatal(err)
		}
		if err := m.Release(ctx(t), url, "e1", runA); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if g := mustGet(t, m); g.Owner != "" || g.State != ingest.StatePending || g.Line != 25 {
			t.Fatalf("released entry %+v", g)
		}
		b, err := m.Begin(ctx(t), url, "e1", runB, 0)
		if err != nil || b.Owner != runB || b.Line != 25 {
			t.Fatalf("Begin after a release: %+v, %v", b, err)
		}
		if err := m.Finish(ctx(t), ingest.Entry{URL: url, ETag: "e1", Owner: runB, State: ingest.StateFailed, Line: 30, Error: "x"}); err != nil {
			t.Fatal(err)
		}
		if g := mustGet(t, m); g.Owner != "" {
			t.Fatalf("a failed entry keeps its claim: %+v", g)
		}
	})

	t.Run("ConcurrentBeginsOneWinner", func(t *testing.T) {
		m := newManifest(t)
		var wg sync.WaitGroup
		results := make(chan error, 6)
		for i := range 6 {
			wg.Go(func() {
				_, err := m.Begin(ctx(t), url, "e1", fmt.Sprintf("run-%d", i), 0)
				results <- err
			})
		}
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case errors.Is(err, ingest.ErrClaimed), errors.Is(err, ingest.ErrConflict):
			default:
				t.Fatalf("Begin: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d runs claimed the file at once, want 1", won)
		}
	})
}
