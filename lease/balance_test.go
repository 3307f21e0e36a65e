package lease_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// ghosts are workers the test plays itself, straight on the store: they
// heartbeat, hold leases and answer handoff requests only as the test
// says. They never bump the generation, so a coordinator learns about
// their moves only by reading the table.
type ghosts struct {
	c      *cluster
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startGhosts creates each ghost's item and its leases (owner → count;
// "" for unowned) and heartbeats for them every 2 s until stop.
func startGhosts(c *cluster, owners map[string]int) *ghosts {
	ctx, cancel := context.WithCancel(context.Background())
	g := &ghosts{c: c, cancel: cancel}
	n := 0
	for owner, count := range owners {
		for range count {
			l := lease.Lease{ShardID: fmt.Sprintf("shard-%04d", n), Owner: owner, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}
			if err := c.fake.Create(ctx, l); err != nil {
				c.t.Fatal(err)
			}
			n++
		}
		if owner == "" {
			continue
		}
		if _, err := c.fake.Heartbeat(ctx, owner, lease.WorkerName(owner), count, false, true); err != nil {
			c.t.Fatal(err)
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				if _, err := c.fake.Heartbeat(ctx, owner, lease.WorkerName(owner), count, false, false); err != nil && ctx.Err() == nil {
					c.t.Errorf("ghost %s: %v", owner, err)
				}
			}
		}()
	}
	return g
}

func (g *ghosts) stop() { g.cancel(); g.wg.Wait() }

// move hands one of from's leases to to, as a ghost handoff does: a
// request and a transfer, no announcement.
func (g *ghosts) move(from, to string) {
	ctx := context.Background()
	snap, _ := g.c.fake.Snapshot(ctx)
	for _, l := range snap.Leases {
		if l.Owner != from || l.HandoffTo != "" {
			continue
		}
		if err := g.c.fake.RequestHandoff(ctx, l.ShardID, from, l.Epoch, to); err != nil {
			g.c.t.Fatal(err)
		}
		if _, err := g.c.fake.Transfer(ctx, l.ShardID, from, l.Epoch, l.Checkpoint, to); err != nil {
			g.c.t.Fatal(err)
		}
		return
	}
	g.c.t.Fatalf("%s holds nothing to move", from)
}

// requestsBy returns the leases whose pending request names requester,
// by owner.
func (c *cluster) requestsBy(requester string) map[string]int {
	snap, _ := c.fake.Snapshot(context.Background())
	m := map[string]int{}
	for _, l := range snap.Leases {
		if l.HandoffTo == requester {
			m[l.Owner]++
		}
	}
	return m
}

// TestAWorkerAtFloorLooksAgainWithoutAnAnnouncement is the scale-out
// stall (10,000 leases, 200 + 20 workers: 147 s, until the 2-minute scan).
// A worker at floor that sees a peer below floor must not ask for one
// more: the one below floor asks first. Handoffs are not announced, so
// once the peer below floor got its lease nothing tells the worker at
// floor that it may now ask. It used to look again with a one-in-five
// chance decided at one scan only; after a "no" it only polled until the
// scan interval. Here W holds 60 of 243 leases with X1 and X2 at 62 and Y
// at 59 (floor 60, target 61); Y gets one from X1. W must then ask X2 for
// one, long before the scan interval. (The table is big enough that a
// scan costs more than a poll: smaller ones are scanned on every pass.)
func TestAWorkerAtFloorLooksAgainWithoutAnAnnouncement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0)
		const x1, x2, y = "X1~00000001", "X2~00000002", "Y~00000003"
		g := startGhosts(c, map[string]int{x1: 62, x2: 62, y: 59, "": 60})
		defer g.stop()
		defer c.stopAll()
		w := c.start("W", fast)
		c.eventually("W takes the 60 unowned leases", 10*time.Second, func() bool { return len(w.co.Held()) == 60 })
		time.Sleep(10 * time.Second)
		if n := len(c.requestsBy(w.co.Identity())); n != 0 {
			t.Fatalf("W asked for a lease while Y is below floor: %v", c.requestsBy(w.co.Identity()))
		}
		scans := w.co.Stats().Scans
		g.move(x1, y) // X1 61, X2 62, Y 60, W 60: W may now ask X2 for one
		moved := time.Now()
		c.eventually("W asks X2 for a lease", 40*time.Second, func() bool { return c.requestsBy(w.co.Identity())[x2] == 1 })
		t.Logf("W asked %s after the move, %d scans", time.Since(moved), w.co.Stats().Scans-scans)
		if got := c.requestsBy(w.co.Identity()); got[x1] != 0 || got[y] != 0 {
			t.Errorf("W asked %v; only X2 is two above it", got)
		}
	})
}

// TestARefusedRequestIsAskedAgainWithoutAnAnnouncement: a requester
// follows its pending requests with polls; when the owner refuses (here:
// a ghost that never announces it), it must plan again at once, not wait
// for the scan interval. Owners used to bump the generation on every
// refusal so that the requester (and the whole fleet) would scan; that
// made every refusal cost a scan per worker. W takes the 398 unowned of
// 1,200 leases (floor 400) and asks X1, at 402, for two; a poll of two
// leases is far cheaper than a scan of 1,200, so it polls them.
func TestARefusedRequestIsAskedAgainWithoutAnAnnouncement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0)
		const x1, x2 = "X1~00000001", "X2~00000002"
		g := startGhosts(c, map[string]int{x1: 402, x2: 400, "": 398})
		defer g.stop()
		defer c.stopAll()
		w := c.start("W", fast)
		me := func() string { return w.co.Identity() }
		pending := func() int {
			n := 0
			for _, k := range c.requestsBy(me()) {
				n += k
			}
			return n
		}
		c.eventually("W asks X1 for two", 10*time.Second, func() bool { return c.requestsBy(me())[x1] == 2 })
		polls := w.co.Stats().Polls
		// Refuse them all, as an owner that judged the moves useless does.
		ctx := context.Background()
		snap, _ := c.fake.Snapshot(ctx)
		for _, l := range snap.Leases {
			if l.HandoffTo == me() {
				if err := c.fake.CancelHandoff(ctx, l.ShardID, me()); err != nil {
					t.Fatal(err)
				}
			}
		}
		refused, sent := time.Now(), w.co.Stats().Requested
		c.eventually("W asks again", 5*time.Second, func() bool { return w.co.Stats().Requested > sent && pending() > 0 })
		t.Logf("W asked again %s after the refusals (%d polls meanwhile)", time.Since(refused), w.co.Stats().Polls-polls)
	})
}
