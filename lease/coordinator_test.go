package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// frozenStore wraps a store; while frozen every call fails, like a worker
// that is paused or partitioned from DynamoDB.
type frozenStore struct {
	lease.Store
	frozen atomic.Bool
}

var errPartitioned = errors.New("partitioned")

func (f *frozenStore) Heartbeat(ctx context.Context, id string, held int, stopping bool) (int64, error) {
	if f.frozen.Load() {
		return 0, errPartitioned
	}
	return f.Store.Heartbeat(ctx, id, held, stopping)
}

func (f *frozenStore) Snapshot(ctx context.Context) (lease.Snapshot, error) {
	if f.frozen.Load() {
		return lease.Snapshot{}, errPartitioned
	}
	return f.Store.Snapshot(ctx)
}

// events records what every worker's handler was told, in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// index returns the position of the first event s at or after from, or -1.
func (e *events) index(s string, from int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := from; i < len(e.log); i++ {
		if e.log[i] == s {
			return i
		}
	}
	return -1
}

func (e *events) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.log)
}

type handler struct {
	id    string
	ev    *events
	coord *lease.Coordinator
}

func (h *handler) Acquired(l lease.Lease) { h.ev.add("%s acquired %s", h.id, l.ShardID) }
func (h *handler) Lost(shard, reason string) {
	h.ev.add("%s lost %s", h.id, shard)
}
func (h *handler) HandoffRequested(shard, to string) {
	h.ev.add("%s handoff %s to %s", h.id, shard, to)
	go func() {
		cp := checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "42"}}
		_ = h.coord.Transfer(context.Background(), shard, cp, to)
	}()
}

type cluster struct {
	t      *testing.T
	fake   *leasetest.Fake
	ev     *events
	coords map[string]*lease.Coordinator
	stores map[string]*frozenStore
	cancel map[string]context.CancelFunc
	done   map[string]chan struct{}
}

var fast = lease.Config{Duration: time.Second, SafetyMargin: 300 * time.Millisecond, RenewInterval: 200 * time.Millisecond, TakeInterval: 100 * time.Millisecond}

func newCluster(t *testing.T, shards int) *cluster {
	c := &cluster{t: t, fake: leasetest.NewFake(), ev: &events{}, coords: map[string]*lease.Coordinator{},
		stores: map[string]*frozenStore{}, cancel: map[string]context.CancelFunc{}, done: map[string]chan struct{}{}}
	for i := range shards {
		if err := c.fake.Create(context.Background(), lease.Lease{ShardID: fmt.Sprintf("shard-%d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for id, cancel := range c.cancel {
			cancel()
			<-c.done[id]
		}
	})
	return c
}

func (c *cluster) start(id string) {
	st := &frozenStore{Store: c.fake}
	h := &handler{id: id, ev: c.ev}
	cfg := fast
	cfg.WorkerID = id
	co, err := lease.NewCoordinator(st, cfg, h, zap.NewNop())
	if err != nil {
		c.t.Fatal(err)
	}
	h.coord = co
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.coords[id], c.stores[id], c.cancel[id], c.done[id] = co, st, cancel, done
	go func() { defer close(done); _ = co.Run(ctx) }()
}

// owners returns shard count per owner in the table.
func (c *cluster) owners() map[string]int {
	snap, _ := c.fake.Snapshot(context.Background())
	m := map[string]int{}
	for _, l := range snap.Leases {
		m[l.Owner]++
	}
	return m
}

func (c *cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("never: %s (owners %v)", what, c.owners())
}

func balanced(m map[string]int, ids ...string) bool {
	if m[""] > 0 {
		return false
	}
	lo, hi := 1<<30, 0
	for _, id := range ids {
		lo, hi = min(lo, m[id]), max(hi, m[id])
	}
	return hi-lo <= 1
}

func TestCoordinatorsShareAndRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs coordinators on short real timers for a few seconds")
	}
	c := newCluster(t, 8)
	c.start("A")
	c.start("B")
	c.start("C")
	c.eventually("8 shards spread over 3 workers", func() bool { return balanced(c.owners(), "A", "B", "C") })
	c.start("D")
	c.eventually("scale-out to 4 workers balances by handoff", func() bool { return balanced(c.owners(), "A", "B", "C", "D") })
	if c.owners()["D"] == 0 {
		t.Fatal("D acquired nothing")
	}
	// Graceful stop of D: it releases its leases; peers take them at once.
	c.coords["D"].BeginStop(context.Background())
	for shard := range c.coords["D"].Held() {
		if err := c.coords["D"].Transfer(context.Background(), shard, checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "7"}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	c.cancel["D"]()
	<-c.done["D"]
	delete(c.cancel, "D")
	c.eventually("D's leases taken by A, B, C", func() bool { return balanced(c.owners(), "A", "B", "C") })
}

func TestZombieFencesItselfBeforeTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs coordinators on short real timers for a few seconds")
	}
	c := newCluster(t, 4)
	c.start("A")
	c.eventually("A holds all", func() bool { return c.owners()["A"] == 4 })
	c.start("B")
	c.eventually("A and B share", func() bool { return balanced(c.owners(), "A", "B") })
	held := c.coords["A"].Held()
	var shard string
	var epoch int64
	for s, e := range held {
		shard, epoch = s, e
	}
	mark := c.ev.len()
	c.stores["A"].frozen.Store(true) // A is partitioned: no heartbeats
	c.eventually("B takes A's leases", func() bool { return c.owners()["B"] == 4 })
	lostAt := c.ev.index("A lost "+shard, mark)
	takenAt := c.ev.index("B acquired "+shard, mark)
	if lostAt < 0 || takenAt < 0 || lostAt > takenAt {
		t.Fatalf("A must stop processing %s (event %d) before B takes it (event %d)", shard, lostAt, takenAt)
	}
	// The zombie's late checkpoint at its old epoch is rejected.
	err := c.fake.Checkpoint(context.Background(), shard, "A", epoch, checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "999"}})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("zombie checkpoint: %v, want ErrLost", err)
	}
	// A comes back: it rejoins and the leases rebalance cooperatively.
	c.stores["A"].frozen.Store(false)
	c.eventually("A rejoins and gets its share back", func() bool { return balanced(c.owners(), "A", "B") })
}
