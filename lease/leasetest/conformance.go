package leasetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// RunConformance runs the store contract against the stores newStore
// returns: each subtest gets a fresh, empty store. The same suite runs
// against Fake (unit tests) and the DynamoDB store on dynalite
// (integration), so the fake cannot drift from the real semantics.
func RunConformance(t *testing.T, newStore func(t *testing.T) lease.Store) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	cp := func(seq string, sub int64) checkpoint.Checkpoint {
		return checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: seq, Sub: sub}}
	}

	t.Run("EnsureTableConcurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- s.EnsureTable(ctx(t)) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("EnsureTable raced: %v", err)
			}
		}
	})

	t.Run("CreateTwiceIsErrExists", func(t *testing.T) {
		s := newStore(t)
		l := lease.Lease{ShardID: "shardId-000", Checkpoint: cp(checkpoint.TrimHorizon, 0), Parents: []string{"p1", "p2"}}
		if err := s.Create(ctx(t), l); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx(t), l); !errors.Is(err, lease.ErrExists) {
			t.Fatalf("second create: got %v, want ErrExists", err)
		}
		got, err := s.Get(ctx(t), "shardId-000")
		if err != nil {
			t.Fatal(err)
		}
		if got.Owner != "" || got.Epoch != 0 || got.Checkpoint.Position.Sequence != checkpoint.TrimHorizon || len(got.Parents) != 2 || got.Parents[1] != "p2" {
			t.Fatalf("created lease read back as %+v", got)
		}
		if _, err := s.Get(ctx(t), "nope"); !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("get missing: got %v, want ErrNotFound", err)
		}
	})

	t.Run("TakeIsFencedOnEpoch", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		a, err := s.Take(ctx(t), "s1", "A", 0)
		if err != nil {
			t.Fatal(err)
		}
		if a.Owner != "A" || a.Epoch != 1 {
			t.Fatalf("after take: %+v", a)
		}
		// B read epoch 0 before A's take: its take must fail.
		if _, err := s.Take(ctx(t), "s1", "B", 0); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("stale take: got %v, want ErrConflict", err)
		}
		if err := s.RequestHandoff(ctx(t), "s1", "A", 1, "C"); err != nil {
			t.Fatal(err)
		}
		b, err := s.Take(ctx(t), "s1", "B", 1)
		if err != nil || b.Owner != "B" || b.Epoch != 2 {
			t.Fatalf("take at current epoch: %+v, %v", b, err)
		}
		// A request asks whoever owns the lease: it survives the take.
		if got, _ := s.Get(ctx(t), "s1"); got.HandoffTo != "C" {
			t.Fatalf("take dropped the pending request: %+v", got)
		}
	})

	t.Run("ZombieCheckpointRejected", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Take(ctx(t), "s1", "A", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Checkpoint(ctx(t), "s1", "A", 1, cp("100", 0)); err != nil {
			t.Fatalf("owner checkpoint: %v", err)
		}
		if _, err := s.Take(ctx(t), "s1", "B", 1); err != nil {
			t.Fatal(err)
		}
		if err := s.Checkpoint(ctx(t), "s1", "A", 1, cp("200", 0)); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("zombie checkpoint: got %v, want ErrLost", err)
		}
		// Same owner name but an old epoch (a restarted worker's previous
		// incarnation) is fenced too.
		if _, err := s.Take(ctx(t), "s1", "A", 2); err != nil {
			t.Fatal(err)
		}
		if err := s.Checkpoint(ctx(t), "s1", "A", 1, cp("300", 0)); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("old-epoch checkpoint: got %v, want ErrLost", err)
		}
		got, _ := s.Get(ctx(t), "s1")
		if got.Checkpoint.Position.Sequence != "100" {
			t.Fatalf("checkpoint moved by a zombie: %+v", got.Checkpoint)
		}
	})

	t.Run("CheckpointCarriesSubAndSinks", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Take(ctx(t), "s1", "A", 0); err != nil {
			t.Fatal(err)
		}
		c := checkpoint.Checkpoint{
			Position:     checkpoint.Position{Sequence: "4960", Sub: 7},
			Sinks:        map[string]checkpoint.Position{"opensearch": {Sequence: "4970", Sub: 2}, "s3": {Sequence: "4960", Sub: 7}},
			MillisBehind: 1234,
		}
		if err := s.Checkpoint(ctx(t), "s1", "A", 1, c); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx(t), "s1")
		if got.Checkpoint.Position != c.Position || got.Checkpoint.Sinks["opensearch"] != c.Sinks["opensearch"] || len(got.Checkpoint.Sinks) != 2 || got.Checkpoint.MillisBehind != 1234 {
			t.Fatalf("read back %+v, want %+v", got.Checkpoint, c)
		}
	})

	t.Run("HandoffAndTransfer", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Take(ctx(t), "s1", "A", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestHandoff(ctx(t), "s1", "A", 1, "B"); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestHandoff(ctx(t), "s1", "A", 1, "C"); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("second request: got %v, want ErrConflict", err)
		}
		got, _ := s.Get(ctx(t), "s1")
		if got.HandoffTo != "B" {
			t.Fatalf("handoff_to = %q", got.HandoffTo)
		}
		if _, err := s.Transfer(ctx(t), "s1", "C", 1, cp("5", 0), "B"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("transfer by non-owner: got %v, want ErrLost", err)
		}
		e, err := s.Transfer(ctx(t), "s1", "A", 1, cp("50", 3), "B")
		if err != nil || e != 2 {
			t.Fatalf("transfer: epoch %d, %v", e, err)
		}
		got, _ = s.Get(ctx(t), "s1")
		if got.Owner != "B" || got.Epoch != 2 || got.HandoffTo != "" || got.Checkpoint.Position != (checkpoint.Position{Sequence: "50", Sub: 3}) {
			t.Fatalf("after transfer: %+v", got)
		}
		if err := s.RequestHandoff(ctx(t), "s1", "B", 2, "C"); err != nil {
			t.Fatal(err)
		}
		if err := s.CancelHandoff(ctx(t), "s1", "X"); err != nil {
			t.Fatalf("cancel of someone else's request must be a no-op: %v", err)
		}
		if got, _ = s.Get(ctx(t), "s1"); got.HandoffTo != "C" {
			t.Fatalf("wrong request cancelled: %+v", got)
		}
		if err := s.CancelHandoff(ctx(t), "s1", "C"); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Get(ctx(t), "s1"); got.HandoffTo != "" {
			t.Fatalf("request not cancelled: %+v", got)
		}
	})

	t.Run("ReleaseLeavesUnowned", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Take(ctx(t), "s1", "A", 0); err != nil {
			t.Fatal(err)
		}
		e, err := s.Transfer(ctx(t), "s1", "A", 1, cp(checkpoint.ShardEnd, 0), "")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx(t), "s1")
		if got.Owner != "" || got.Epoch != e || !got.Ended() {
			t.Fatalf("after release: %+v", got)
		}
		if err := s.Checkpoint(ctx(t), "s1", "A", 1, cp("1", 0)); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("checkpoint after release: got %v, want ErrLost", err)
		}
	})

	t.Run("HeartbeatAndSnapshot", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		mustCreate(t, s, "s2")
		for i := int64(1); i <= 3; i++ {
			n, err := s.Heartbeat(ctx(t), "A~1", "A", 2, false, i == 1)
			if err != nil || n != i {
				t.Fatalf("heartbeat %d: got %d, %v", i, n, err)
			}
		}
		if _, err := s.Heartbeat(ctx(t), "B~1", "B", 0, true, true); err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Leases) != 2 || len(snap.Workers) != 2 {
			t.Fatalf("snapshot: %d leases, %d workers", len(snap.Leases), len(snap.Workers))
		}
		for _, w := range snap.Workers {
			if w.ID == "A~1" && (w.Name != "A" || w.Heartbeat != 3 || w.Held != 2 || w.Stopping || w.Dead) {
				t.Fatalf("worker A: %+v", w)
			}
			if w.ID == "B~1" && !w.Stopping {
				t.Fatalf("worker B: %+v, want stopping", w)
			}
		}
		if snap.ReadUnits <= 0 {
			t.Fatalf("snapshot read units %v, want > 0", snap.ReadUnits)
		}
		if err := s.DeleteWorker(ctx(t), "B~1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx(t), "s2"); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("delete of a lease that has not ended: got %v, want ErrConflict", err)
		}
		if _, err := s.Take(ctx(t), "s2", "A~1", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transfer(ctx(t), "s2", "A~1", 1, cp(checkpoint.ShardEnd, 0), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx(t), "s2"); err != nil {
			t.Fatalf("delete ended lease: %v", err)
		}
		snap, _ = s.Snapshot(ctx(t))
		if len(snap.Leases) != 1 || len(snap.Workers) != 1 {
			t.Fatalf("after deletes: %d leases, %d workers", len(snap.Leases), len(snap.Workers))
		}
	})

	t.Run("DeclaredDeadIsFinal", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Heartbeat(ctx(t), "A~1", "A", 0, false, false); !errors.Is(err, lease.ErrDeclaredDead) {
			t.Fatalf("a heartbeat that is not the first needs the item: got %v, want ErrDeclaredDead", err)
		}
		n, err := s.Heartbeat(ctx(t), "A~1", "A", 0, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkDead(ctx(t), "A~1", n-1); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("mark dead at an old counter: got %v, want ErrConflict", err)
		}
		if err := s.MarkDead(ctx(t), "A~1", n); err != nil {
			t.Fatalf("mark dead: %v", err)
		}
		if err := s.MarkDead(ctx(t), "A~1", n); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("second mark: got %v, want ErrConflict", err)
		}
		if _, err := s.Heartbeat(ctx(t), "A~1", "A", 0, false, false); !errors.Is(err, lease.ErrDeclaredDead) {
			t.Fatalf("heartbeat after being declared dead: got %v, want ErrDeclaredDead", err)
		}
		// An owner with no item at all is declared dead with a tombstone,
		// and only if it still has none.
		if err := s.MarkDead(ctx(t), "ghost~1", -1); err != nil {
			t.Fatalf("tombstone: %v", err)
		}
		if _, err := s.Heartbeat(ctx(t), "ghost~1", "ghost", 0, false, true); !errors.Is(err, lease.ErrDeclaredDead) {
			t.Fatalf("ghost heartbeat: got %v, want ErrDeclaredDead", err)
		}
		if _, err := s.Heartbeat(ctx(t), "B~1", "B", 0, false, true); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkDead(ctx(t), "B~1", -1); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("tombstone over a live item: got %v, want ErrConflict", err)
		}
		if err := s.DeleteDeadWorker(ctx(t), "B~1"); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("delete a live worker as dead: got %v, want ErrConflict", err)
		}
		for _, id := range []string{"A~1", "ghost~1"} {
			if err := s.DeleteDeadWorker(ctx(t), id); err != nil {
				t.Fatalf("delete dead %s: %v", id, err)
			}
		}
		// Swept away, a dead worker still cannot heartbeat back to life.
		if _, err := s.Heartbeat(ctx(t), "A~1", "A", 0, false, false); !errors.Is(err, lease.ErrDeclaredDead) {
			t.Fatalf("heartbeat after the sweep: got %v, want ErrDeclaredDead", err)
		}
		snap, err := s.Snapshot(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Workers) != 1 || snap.Workers[0].ID != "B~1" || snap.Workers[0].Dead {
			t.Fatalf("workers after cleanup: %+v", snap.Workers)
		}
	})

	t.Run("GenerationAndPoll", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Heartbeat(ctx(t), "A~1", "A", 1, false, true); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Notify(ctx(t), "A~1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Notify(ctx(t), "nobody~1"); err != nil {
			t.Fatalf("notify of a worker without an item: %v", err)
		}
		for i := int64(1); i <= 2; i++ {
			g, err := s.Bump(ctx(t))
			if err != nil || g != i {
				t.Fatalf("bump %d: %d, %v", i, g, err)
			}
		}
		snap, err := s.Snapshot(ctx(t))
		if err != nil || snap.Generation != 2 || len(snap.Leases) != 1 || len(snap.Workers) != 1 {
			t.Fatalf("snapshot %+v, %v: want generation 2, one lease, one worker (the fleet item is neither)", snap, err)
		}
		// A store that has not read the fleet partition yet cannot tell
		// what a query of all of it would cost: it queries the range of
		// identities it asks for and reads the generation by itself.
		fresh := newStore(t)
		if _, err := fresh.Heartbeat(ctx(t), "B~1", "B", 0, false, true); err != nil {
			t.Fatal(err)
		}
		if p, err := fresh.Poll(ctx(t), []string{"A~1", "B~1", "C~1"}, nil); err != nil || p.ReadUnits != 1 {
			t.Fatalf("first poll of an empty table: %+v, %v; want 1 read unit, a query and the generation", p, err)
		}
		poll := func(workers, shards []string) lease.Polled {
			t.Helper()
			var p lease.Polled
			var err error
			// Eventually consistent: the emulator and the fake answer at
			// once, DynamoDB usually within a second.
			for end := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				p, err = s.Poll(ctx(t), workers, shards)
				if err != nil {
					t.Fatal(err)
				}
				if p.Generation == 2 || time.Now().After(end) {
					return p
				}
			}
		}
		// The scan above showed the fleet partition small: the generation
		// and the workers are one query of it, half a unit, and the leases
		// a batch read, half a unit per key asked.
		p := poll([]string{"A~1", "nobody~1"}, []string{"s1", "s9", "s1"})
		if p.Generation != 2 || len(p.Workers) != 1 || p.Workers[0].Heartbeat != 1 || p.Workers[0].Inbox != 2 || len(p.Leases) != 1 || p.Leases[0].ShardID != "s1" {
			t.Fatalf("poll: %+v", p)
		}
		if p.ReadUnits != 1.5 {
			t.Fatalf("poll of the fleet and 2 leases (1 found) cost %v read units, want 1.5: half a unit for the fleet's query and for each lease asked", p.ReadUnits)
		}
		if p.FleetBytes != snap.FleetBytes || p.FleetBytes <= 0 {
			t.Fatalf("the poll's query saw a fleet partition of %d bytes, the scan %d", p.FleetBytes, snap.FleetBytes)
		}
	})

	t.Run("PollOfASmallFleetIsOneQuery", func(t *testing.T) {
		// The cost goal at a spread of 4: a worker's poll reads the
		// generation, its own item and two ring neighbours. Read one by
		// one that is 2 units a second per worker; the fleet's items share
		// a partition, and one query of it is billed by their summed size:
		// half a unit for a fleet of a few dozen workers.
		s := newStore(t)
		const n = 16
		ids, snap := heartbeatFleet(t, ctx(t), s, n, "spread04-w%03d~%08x", 4)
		asked := []string{ids[5], ids[6], ids[7]}
		p, err := s.Poll(ctx(t), asked, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.ReadUnits != 0.5 {
			t.Fatalf("poll of 3 of %d workers (fleet partition %d bytes) cost %v read units, want 0.5: one query", n, snap.FleetBytes, p.ReadUnits)
		}
		if p.Generation != 1 || len(p.Workers) != 3 {
			t.Fatalf("poll: generation %d, %d workers; want 1 and only the 3 asked for", p.Generation, len(p.Workers))
		}
		for _, w := range p.Workers {
			if !slices.Contains(asked, w.ID) || w.Heartbeat != 1 || w.Held != 4 {
				t.Fatalf("poll returned %+v", w)
			}
		}
		// A worker heartbeats: the next poll shows it (eventually).
		if _, err := s.Heartbeat(ctx(t), ids[6], lease.WorkerName(ids[6]), 4, false, false); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if p, err = s.Poll(ctx(t), asked, nil); err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(p.Workers, func(w lease.Worker) bool { return w.ID == ids[6] })
			if i >= 0 && p.Workers[i].Heartbeat == 2 {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the heartbeat never showed in a poll: %+v", p.Workers)
			}
		}
	})

	t.Run("PollOfABigFleetQueriesItsRing", func(t *testing.T) {
		// Past 8 KB of worker items a query of the whole fleet partition
		// costs more than 1 unit: the poll queries the identities from its
		// own to its last ring successor (the ring is identity order) and
		// reads the generation with the batch — 1 unit instead of 2 for
		// the four items one by one; at the ring's wrap, two queries.
		s := newStore(t)
		const n = 100
		ids, snap := heartbeatFleet(t, ctx(t), s, n, "a-rather-long-worker-name-for-this-fleet-%03d~%08x", 100)
		if snap.FleetBytes <= 8<<10 {
			t.Fatalf("fleet partition of %d workers is %d bytes; the test needs more than 8 KB", n, snap.FleetBytes)
		}
		for _, tc := range []struct {
			name  string
			asked []string
			units float64
		}{
			{"a ring in one range", []string{ids[40], ids[41], ids[42]}, 1},
			{"a ring that wraps", []string{ids[98], ids[99], ids[0]}, 1},
			{"not a range: item by item", []string{ids[40], ids[10], ids[70]}, 2},
		} {
			p, err := s.Poll(ctx(t), tc.asked, []string{"none"})
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.units + 0.5; p.ReadUnits != want {
				t.Errorf("%s: poll of 3 of %d workers (%d bytes) and a lease: %v read units, want %v", tc.name, n, snap.FleetBytes, p.ReadUnits, want)
			}
			if p.Generation != 1 || len(p.Workers) != 3 || len(p.Leases) != 0 {
				t.Errorf("%s: generation %d, %d workers, %d leases; want 1, the 3 asked for, none", tc.name, p.Generation, len(p.Workers), len(p.Leases))
			}
			for _, w := range p.Workers {
				if !slices.Contains(tc.asked, w.ID) {
					t.Errorf("%s: poll returned %s, not asked for", tc.name, w.ID)
				}
			}
		}
	})

	t.Run("HandoffWithdrawnIsConflictNotLost", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		if _, err := s.Take(ctx(t), "s1", "A", 0); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestHandoff(ctx(t), "s1", "A", 1, "B"); err != nil {
			t.Fatal(err)
		}
		if err := s.CancelHandoff(ctx(t), "s1", "B"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Transfer(ctx(t), "s1", "A", 1, cp("9", 0), "B"); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("hand over after the request was withdrawn: got %v, want ErrConflict", err)
		}
		got, _ := s.Get(ctx(t), "s1")
		if got.Owner != "A" || got.Epoch != 1 {
			t.Fatalf("lease moved: %+v", got)
		}
		if _, err := s.Transfer(ctx(t), "s1", "A", 0, cp("9", 0), "B"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("hand over at an old epoch: got %v, want ErrLost", err)
		}
	})

	t.Run("ConcurrentTakesOneWinner", func(t *testing.T) {
		s := newStore(t)
		mustCreate(t, s, "s1")
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for _, w := range []string{"A", "B", "C", "D", "E"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Take(ctx(t), "s1", w, 0); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, lease.ErrConflict) {
					t.Errorf("take by %s: %v", w, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d workers won the same take, want 1", wins)
		}
	})
}

// heartbeatFleet writes the first heartbeat of n workers, named by
// format from their number and a spread-out suffix, each holding held
// leases; bumps the generation once and returns the identities and a scan
// that shows them all.
func heartbeatFleet(t *testing.T, ctx context.Context, s lease.Store, n int, format string, held int) ([]string, lease.Snapshot) {
	t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf(format, i, i*7919)
		ids = append(ids, id)
		if _, err := s.Heartbeat(ctx, id, lease.WorkerName(id), held, false, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Bump(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil || len(snap.Workers) != n {
		t.Fatalf("snapshot: %d workers, %v", len(snap.Workers), err)
	}
	return ids, snap
}

func mustCreate(t *testing.T, s lease.Store, shard string) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Create(c, lease.Lease{ShardID: shard, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
		t.Fatalf("create %s: %v", shard, err)
	}
}
