package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
	"github.com/leasehold/leasehold/producer"
)

// second returns another ingester (another run) on f's S3 and Kinesis
// with cfg (its manifest shared by the caller).
func (f *fixture) second(t *testing.T, cfg ingest.Config) *ingest.Ingester {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	cfg.ProducerOptions = []producer.Option{producer.WithLinger(2 * time.Millisecond), producer.WithBackoff(time.Millisecond, 10*time.Millisecond)}
	in, err := ingest.New(f.s3, f.k, "logs", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	return in
}

// TestTwoBackfillsOfOnePrefix runs two backfills of the same prefix at
// once (two runs, one manifest). Each file is claimed by one run; the
// other leaves it for the end of its run and then finds it done. Every
// line is in the stream exactly once and both runs report success.
func TestTwoBackfillsOfOnePrefix(t *testing.T) {
	m := ingesttest.NewManifest()
	cfg := ingest.Config{Aggregate: true, Manifest: m, CheckpointLines: 200, ClaimDuration: time.Second}
	a := newFixture(t, cfg)
	b := a.second(t, cfg)
	const files, lines = 8, 3000
	for i := range files {
		a.put(fmt.Sprintf("cf/E1.2024-05-01-%02d.x.gz", i), lines, uint64(500+i))
	}
	spec := ingest.BackfillSpec{Bucket: "logs", Prefix: "cf/"}
	var sums [2]ingest.Summary
	var errs [2]error
	var wg sync.WaitGroup
	for i, in := range []*ingest.Ingester{a.in, b} {
		wg.Go(func() { sums[i], errs[i] = in.Backfill(ctxT(t), spec, ingest.RunOptions{Concurrency: 2}) })
	}
	wg.Wait()
	ids := a.ids(t)
	for i := range files {
		want(t, ids, uint64(500+i), 0, lines, 1)
	}
	for i, s := range sums {
		if errs[i] != nil || !s.OK() || s.Done+s.Skipped != files {
			t.Fatalf("run %d: %+v, %v; want every file done or skipped", i, s, errs[i])
		}
	}
	if d := sums[0].Done + sums[1].Done; d != files {
		t.Fatalf("%d files ingested by the two runs together, want %d", d, files)
	}
	t.Logf("run A: %d done, %d claimed by B; run B: %d done, %d claimed by A", sums[0].Done, sums[0].Claimed, sums[1].Done, sums[1].Claimed)
	if sums[0].Claimed+sums[1].Claimed == 0 {
		t.Log("the runs never met on a file; the test proved less than it could")
	}
	for _, e := range m.Entries() {
		if e.State != ingest.StateDone || e.Owner != "" {
			t.Fatalf("entry %+v, want done and unclaimed", e)
		}
	}
}

// TestStaleClaimIsTakenOver: a run crashed holding a file at line 1000.
// Another run waits for the claim to stay unrenewed for a whole claim
// duration, takes the file over and resumes after line 1000. Meanwhile a
// live owner's claim, renewed, is never taken; when that owner finishes,
// the waiting run reports the file done by another run.
func TestStaleClaimIsTakenOver(t *testing.T) {
	m := ingesttest.NewManifest()
	const claim = 600 * time.Millisecond
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m, ClaimDuration: claim})
	ref := f.put("cf/E1.2024-05-01-10.dead.gz", 3000, 61)
	if _, err := m.Begin(ctxT(t), ref.URL(), ref.ETag, "crashed-run", 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Checkpoint(ctxT(t), ref.URL(), ref.ETag, "crashed-run", 1000, 998); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{WaitClaimed: true})
	if err != nil || !res.TookOver || res.ClaimedBy != "crashed-run" || res.StartLine != 1000 {
		t.Fatalf("Ingest: %+v, %v; want taken over from crashed-run at line 1000", res, err)
	}
	if took := time.Since(began); took < claim {
		t.Fatalf("took the file over after %v, before a whole claim duration (%v)", took, claim)
	}
	ids := f.ids(t)
	want(t, ids, 61, 998, 3000, 1)
	for i := range 998 {
		if ids[ingesttest.RequestID(61, i)] != 0 {
			t.Fatalf("line %d, before the dead run's offset, sent again", i+3)
		}
	}

	// A live owner renews: the waiting run does not take its file.
	live := f.put("cf/E1.2024-05-01-11.live.gz", 100, 62)
	if _, err := m.Begin(ctxT(t), live.URL(), live.ETag, "live-run", 0); err != nil {
		t.Fatal(err)
	}
	stopRenew := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			select {
			case <-stopRenew:
				return
			case <-time.After(claim / 4):
				_ = m.Renew(context.Background(), live.URL(), live.ETag, "live-run")
			}
		}
	}()
	done := make(chan ingest.FileResult, 1)
	go func() {
		r, _ := f.in.Ingest(ctxT(t), live, ingest.FileOptions{WaitClaimed: true})
		done <- r
	}()
	time.Sleep(3 * claim)
	select {
	case r := <-done:
		t.Fatalf("took a renewed claim: %+v", r)
	default:
	}
	close(stopRenew)
	<-renewed
	if err := m.Finish(ctxT(t), ingest.Entry{URL: live.URL(), ETag: live.ETag, Owner: "live-run", State: ingest.StateDone, Line: 102, Records: 100}); err != nil {
		t.Fatal(err)
	}
	if r := <-done; !r.Skipped || !r.OtherRun || r.Err != nil {
		t.Fatalf("after the owner finished: %+v, want skipped, done by the other run", r)
	}
	if n := f.ids(t)[ingesttest.RequestID(62, 0)]; n != 0 {
		t.Fatal("the waiting run sent lines of a file another run finished")
	}
}

// TestClaimLostStopsReading: the run's renewal is refused (another run
// took the file over) or keeps failing for two thirds of the claim
// duration. Reading stops with ErrClaimLost, and the run writes nothing
// more about the file: no checkpoint, no finish, no release.
func TestClaimLostStopsReading(t *testing.T) {
	for _, tt := range []struct {
		name     string
		renewErr error
	}{
		{"taken over", ingest.ErrConflict},
		{"renewals keep failing", errors.New("dynamodb: connection refused")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := ingesttest.NewManifest()
			var lost atomic.Bool
			var afterLoss atomic.Int32
			m.Fail = func(op, _ string) error {
				if op == "renew" {
					lost.Store(true)
					return fmt.Errorf("renew claim: %w", tt.renewErr)
				}
				if lost.Load() {
					afterLoss.Add(1)
				}
				return nil
			}
			const claim = 300 * time.Millisecond
			f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m, ClaimDuration: claim, CheckpointLines: 100, DrainTimeout: 100 * time.Millisecond})
			f.k.Hold = make(chan struct{}) // Kinesis answers nothing: the file cannot finish
			defer close(f.k.Hold)
			ref := f.put("cf/E1.2024-05-01-10.z.gz", 5000, 63)
			began := time.Now()
			_, err := f.in.Ingest(ctxT(t), ref, ingest.FileOptions{})
			if !errors.Is(err, ingest.ErrClaimLost) || !ingest.Retryable(err) {
				t.Fatalf("Ingest = %v, want ErrClaimLost", err)
			}
			if took := time.Since(began); took > claim+500*time.Millisecond {
				t.Errorf("stopped %v after the start, want within about the claim duration", took)
			}
			if n := afterLoss.Load(); n != 0 {
				t.Errorf("%d manifest writes after the claim was lost", n)
			}
		})
	}
}

// TestSkipClaimed leaves a file another run holds to that run: the other
// files are done, the summary names the claim, and the run is not OK.
func TestSkipClaimed(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	held := f.put("cf/E1.2024-05-01-10.held.gz", 50, 64)
	f.put("cf/E1.2024-05-01-11.free.gz", 50, 65)
	if _, err := m.Begin(ctxT(t), held.URL(), held.ETag, "other-run", 0); err != nil {
		t.Fatal(err)
	}
	sum, err := f.in.Backfill(ctxT(t), ingest.BackfillSpec{Bucket: "logs", Prefix: "cf/"}, ingest.RunOptions{SkipClaimed: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 1 || sum.Claimed != 1 || sum.NotWaited != 1 || sum.ClaimedBy != "other-run" || sum.OK() || sum.Interrupted {
		t.Fatalf("summary %+v; want 1 done, 1 left to other-run, not OK", sum)
	}
	if n := f.ids(t)[ingesttest.RequestID(64, 0)]; n != 0 {
		t.Fatal("a claimed file was sent")
	}
}
