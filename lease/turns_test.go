package lease_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// scanInterval is the default lease.scan_interval, which these tests
// leave at its default.
const scanInterval = 2 * time.Minute

func (c *cluster) stats() (scans, turns, unannounced int64) {
	for _, w := range c.workers {
		s := w.co.Stats()
		scans, turns, unannounced = scans+s.Scans, turns+s.Turns, unannounced+s.Unannounced
	}
	return scans, turns, unannounced
}

// startBalanced starts n workers on c's shards and waits until they are
// balanced and past the scans of convergence.
func (c *cluster) startBalanced(n, shards int) []string {
	var names []string
	for i := range n {
		name := fmt.Sprintf("W%02d", i)
		names = append(names, name)
		c.start(name, fast)
	}
	c.eventually("balanced", time.Minute, func() bool { return balanced(c.held(), shards, names...) })
	time.Sleep(30 * time.Second)
	return names
}

// TestPeriodicScansTakeTurns is the cost goal "never growing with W × S":
// every worker used to scan the whole table every scan interval, so the
// periodic scans at rest grew with workers × shards (about half the reads
// at 10,000 shards and 200 workers). The workers now take turns: the
// fleet as a whole does one turn — two scans, a lease duration apart —
// per scan interval, whatever its size. The old code does 10 × K scans
// here.
func TestPeriodicScansTakeTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers, intervals = 400, 10, 5
		c := newCluster(t, shards)
		defer c.stopAll()
		c.startBalanced(workers, shards)
		scans0, turns0, un0 := c.stats()
		units0 := c.fake.Units()
		time.Sleep(intervals * scanInterval)
		scans1, turns1, un1 := c.stats()
		units1 := c.fake.Units()
		scans, turns := scans1-scans0, turns1-turns0
		snap, _ := c.fake.Snapshot(context.Background())
		t.Logf("%d workers at rest for %d scan intervals: %d scans, %d turns, %.0f read units (one scan: %.1f)",
			workers, intervals, scans, turns, units1.Read-units0.Read, snap.ReadUnits)
		if turns < intervals-1 || turns > intervals+1 {
			t.Errorf("%d turns of the periodic scan in %d scan intervals, want about one per interval for the whole fleet", turns, intervals)
		}
		if scans > 2*(intervals+1) {
			t.Errorf("%d scans in %d scan intervals at rest, want two per interval (a turn and its second look) for the whole fleet, not %d per worker", scans, intervals, intervals)
		}
		if un1 != un0 {
			t.Errorf("%d turns at rest announced a change, want none: nothing changed", un1-un0)
		}
		// Reads at rest: polls (2 units a second per worker) and the turns.
		want := workers*2*(intervals*scanInterval).Seconds() + 2*(intervals+1)*snap.ReadUnits
		if got := units1.Read - units0.Read; got > want*1.1 {
			t.Errorf("%.0f read units at rest, want about %.0f", got, want)
		}
	})
}

// TestALostAnnouncementIsSeenWithinAScanInterval: a change whose
// announcement was lost — here 40 leases created straight in the table
// with no generation bump, as when shard sync's process dies between the
// create and the bump — is still seen by every worker within about a scan
// interval: the next turn notices the table differs from what the
// generation promised and announces it. Every worker used to find it on
// its own periodic scan; now one turn must find it for all.
func TestALostAnnouncementIsSeenWithinAScanInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers, added = 400, 10, 40
		c := newCluster(t, shards)
		defer c.stopAll()
		names := c.startBalanced(workers, shards)
		before := map[string]int64{}
		for name, w := range c.workers {
			before[name] = w.co.Stats().Scans
		}
		for i := range added {
			l := lease.Lease{ShardID: fmt.Sprintf("new-%02d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}
			if err := c.fake.Create(context.Background(), l); err != nil {
				t.Fatal(err)
			}
		}
		created := time.Now()
		// A turn is due within one scan interval plus its jitter (a
		// quarter); then a take interval or two for everyone to scan.
		c.eventually("the new leases taken and balanced", scanInterval+scanInterval/4+10*time.Second,
			func() bool { return balanced(c.held(), shards+added, names...) })
		took := time.Since(created)
		for name, w := range c.workers {
			if w.co.Stats().Scans == before[name] {
				t.Errorf("%s did not scan after the change", name)
			}
		}
		_, _, un := c.stats()
		t.Logf("the unannounced leases were balanced after %s; %d turns announced a change", took, un)
		if un == 0 {
			t.Error("no turn announced the change")
		}
	})
}

// TestLeasesNobodyTakesAreAnnounced: leases released with the
// announcement lost (the releasing process died before the bump) stay
// unowned while every worker only polls; the next turn sees processable
// leases nobody takes and announces them, even when the leases it
// compares (the set of them) did not change.
func TestLeasesNobodyTakesAreAnnounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers = 400, 10
		c := newCluster(t, shards)
		defer c.stopAll()
		names := c.startBalanced(workers, shards)
		// Stop W00 without a word: its leases stay its own until its
		// neighbours declare it dead, which is announced. Instead, make
		// its leases unowned in the table behind everyone's back: a
		// release whose bump was lost.
		w := c.workers[names[0]]
		me := w.co.Identity()
		ctx := context.Background()
		snap, _ := c.fake.Snapshot(ctx)
		released := 0
		for _, l := range snap.Leases {
			if l.Owner != me {
				continue
			}
			if _, err := c.fake.Transfer(ctx, l.ShardID, me, l.Epoch, l.Checkpoint, ""); err != nil {
				t.Fatal(err)
			}
			released++
		}
		// W00 notices only by a scan of its own; the others by a turn.
		c.eventually("the released leases taken again", scanInterval+scanInterval/4+15*time.Second, func() bool {
			o := c.owners()
			return o[""] == 0
		})
		_, _, un := c.stats()
		t.Logf("%d leases released unannounced; taken again; %d turns announced a change", released, un)
	})
}

// TestAJoinIsAnnouncedByTheNextTurn: a worker that joins is not
// announced (every worker would scan), so the workers that should watch
// its heartbeat (its ring predecessors) learn of it only from a scan.
// Each worker's own periodic scan used to see it within a scan interval;
// now the next turn sees the membership differ from what the generation
// promised and announces it.
func TestAJoinIsAnnouncedByTheNextTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers = 400, 10
		c := newCluster(t, shards)
		defer c.stopAll()
		names := c.startBalanced(workers, shards)
		_, _, un0 := c.stats()
		c.start("W99", fast)
		names = append(names, "W99")
		c.eventually("the joiner balanced in", time.Minute, func() bool { return balanced(c.held(), shards, names...) })
		c.eventually("the join announced", scanInterval+scanInterval/4+10*time.Second, func() bool {
			_, _, un := c.stats()
			return un > un0
		})
	})
}

// TestADeadWorkerNobodyWatchesIsDeclaredDeadByATurn: the second look of
// a turn. Between scans a worker is watched only by its two ring
// predecessors, which poll its heartbeat; when their view of the fleet
// missed it (it joined just after they scanned, and the worker whose turn
// came next had seen it already, so nobody announced it) nobody polls it.
// Here its predecessors' scans never show it, and it dies at once,
// holding its share of the leases (taken from under the others in the
// table: they learn of it at the announcement). The first turn of a worker that sees
// it takes two scans a lease duration apart and declares it dead at the
// second — within a duration and a few take intervals of that turn, not a
// whole scan interval later at the next one. Without the second look it
// stays undeclared (and its leases unprocessed) until another turn.
func TestADeadWorkerNobodyWatchesIsDeclaredDeadByATurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers = 400, 10
		c := newCluster(t, shards)
		defer c.stopAll()
		c.startBalanced(workers, shards)
		const ghost = "W05x~0badf00d"
		ids := []string{ghost}
		for _, w := range c.workers {
			ids = append(ids, w.co.Identity())
		}
		sort.Strings(ids)
		g := sort.SearchStrings(ids, ghost)
		preds := map[string]bool{}
		for _, w := range c.workers {
			if id := w.co.Identity(); id == ids[(g-1+len(ids))%len(ids)] || id == ids[(g-2+len(ids))%len(ids)] {
				w.mu.Lock()
				w.hide = ghost
				w.mu.Unlock()
				preds[w.name] = true
			}
		}
		if len(preds) != 2 {
			t.Fatalf("found %d ring predecessors of %s, want 2", len(preds), ghost)
		}
		// One heartbeat, then nothing: it died, holding its share of the
		// leases (37 of 400 over 11 workers, 3 taken from 3 workers and 4
		// from the other 7, so the fleet looks balanced to the workers
		// that see it and none of them looks again for balance). The
		// leases it holds are not new, so the set of leases a turn
		// compares did not change: a predecessor's turn (which does not
		// see the ghost) announces nothing.
		ctx := context.Background()
		if _, err := c.fake.Heartbeat(ctx, ghost, "W05x", 37, false, true); err != nil {
			t.Fatal(err)
		}
		snap, _ := c.fake.Snapshot(ctx)
		byOwner := map[string][]lease.Lease{}
		for _, l := range snap.Leases {
			byOwner[l.Owner] = append(byOwner[l.Owner], l)
		}
		owners := make([]string, 0, len(byOwner))
		for o := range byOwner {
			owners = append(owners, o)
		}
		sort.Strings(owners)
		for i, o := range owners {
			n := 4
			if i < 3 {
				n = 3
			}
			for _, l := range byOwner[o][:n] {
				if _, err := c.fake.Take(ctx, l.ShardID, ghost, l.Epoch); err != nil {
					t.Fatal(err)
				}
			}
		}
		died := time.Now()
		turns0 := map[string]int64{}
		for name, w := range c.workers {
			turns0[name] = w.co.Stats().Turns
		}
		dead := func() bool {
			snap, _ := c.fake.Snapshot(ctx)
			for _, w := range snap.Workers {
				if w.ID == ghost {
					return w.Dead
				}
			}
			return true // declared and swept
		}
		// The next turn of a worker that sees it (its predecessors, which
		// do not, may come first).
		var by string
		c.eventually("a turn by a worker that sees it", 3*scanInterval, func() bool {
			for name, w := range c.workers {
				if !preds[name] && w.co.Stats().Turns > turns0[name] {
					by = name
					return true
				}
			}
			return false
		})
		turn := time.Now()
		c.eventually("the unwatched worker declared dead", fast.Duration+5*time.Second, dead)
		t.Logf("a worker its ring predecessors (%v) never saw died; a turn by a worker that sees it (%s) came %s later; declared dead %s after it died",
			preds, by, turn.Sub(died).Round(time.Second), time.Since(died).Round(time.Second))
		// Its predecessors' views catch up (here: they see it, marked dead).
		for name := range preds {
			w := c.workers[name]
			w.mu.Lock()
			w.hide = ""
			w.mu.Unlock()
		}
		c.eventually("its leases taken", 10*time.Second, func() bool { return c.owners()["W05x"] == 0 })
		c.checkNoOverlap()
	})
}
