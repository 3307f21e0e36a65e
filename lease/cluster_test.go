package lease_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// The tests in this file run coordinators against the in-memory store
// inside a synctest bubble: time is virtual, so minutes of lease timing
// take milliseconds and run under -short.

// span is one grant: a worker processing a shard from start until the
// grant ended.
type span struct {
	worker     string
	epoch      int64
	handed     bool // Grant.HandedAt is set
	start, end time.Time
	err        error
}

type cluster struct {
	t       *testing.T
	fake    *leasetest.Fake
	mu      sync.Mutex
	spans   map[string][]*span // shard -> grants in order of start
	workers map[string]*tworker
	wg      sync.WaitGroup
	// align, when set, gives each worker started from then on the pass
	// grid it runs on (Coordinator.AlignPasses), as a worker process
	// does with its poll grid.
	align func(name string) (origin time.Time, every time.Duration)
}

type tworker struct {
	c      *cluster
	name   string
	co     *lease.Coordinator
	store  *leasetest.Faulty
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	hide  string                                         // a worker identity this worker's scans do not show; "": none
	fault func(ctx context.Context, method string) error // nil: healthy
	late  func(method string) time.Duration              // answer delay; nil: none
	grant map[string]*lease.Grant
}

var fast = lease.Config{Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second}

func newCluster(t *testing.T, shards int) *cluster {
	c := &cluster{t: t, fake: leasetest.NewFake(), spans: map[string][]*span{}, workers: map[string]*tworker{}}
	for i := range shards {
		if err := c.fake.Create(context.Background(), lease.Lease{ShardID: fmt.Sprintf("shard-%02d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// stopAll cancels every coordinator and waits for everything to end, as
// the bubble requires.
func (c *cluster) stopAll() {
	for _, w := range c.workers {
		w.cancel()
		<-w.done
	}
	c.wg.Wait()
}

func (c *cluster) start(name string, cfg lease.Config) *tworker { return c.startAs(name, name, cfg) }

// startAs starts a worker process with worker id name, known to the test
// as key.
func (c *cluster) startAs(key, name string, cfg lease.Config) *tworker {
	w := &tworker{c: c, name: key, grant: map[string]*lease.Grant{}}
	w.store = &leasetest.Faulty{Store: &hiding{Store: c.fake, w: w},
		Before: func(ctx context.Context, method string) error {
			w.mu.Lock()
			f := w.fault
			w.mu.Unlock()
			if f != nil {
				return f(ctx, method)
			}
			return nil
		},
		After: func(ctx context.Context, method string, err error) error {
			w.mu.Lock()
			late := w.late
			w.mu.Unlock()
			if late != nil {
				if d := late(method); d > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(d):
					}
				}
			}
			return nil
		},
	}
	cfg.WorkerID = name
	co, err := lease.NewCoordinator(w.store, cfg, &handler{w}, testLog(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	w.co = co
	if c.align != nil {
		co.AlignPasses(c.align(key))
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	c.workers[key] = w
	go func() { defer close(w.done); _ = co.Run(ctx) }()
	return w
}

func (w *tworker) setFault(f func(ctx context.Context, method string) error) {
	w.mu.Lock()
	w.fault = f
	w.mu.Unlock()
}

func (w *tworker) setLate(f func(method string) time.Duration) {
	w.mu.Lock()
	w.late = f
	w.mu.Unlock()
}

// hiding leaves the identity its worker's hide names out of that
// worker's scans: views that disagree, as when a worker joined just after
// some peers scanned.
type hiding struct {
	lease.Store
	w *tworker
}

func (h *hiding) Snapshot(ctx context.Context) (lease.Snapshot, error) {
	snap, err := h.Store.Snapshot(ctx)
	h.w.mu.Lock()
	hide := h.w.hide
	h.w.mu.Unlock()
	if err != nil || hide == "" {
		return snap, err
	}
	var ws []lease.Worker
	for _, w := range snap.Workers {
		if w.ID != hide {
			ws = append(ws, w)
		}
	}
	snap.Workers = ws
	return snap, nil
}

type handler struct{ w *tworker }

func (h *handler) Acquired(g *lease.Grant) {
	c := h.w.c
	sp := &span{worker: h.w.name, epoch: g.Lease().Epoch, handed: !g.HandedAt().IsZero(), start: time.Now()}
	c.mu.Lock()
	c.spans[g.ShardID()] = append(c.spans[g.ShardID()], sp)
	c.mu.Unlock()
	h.w.mu.Lock()
	h.w.grant[g.ShardID()] = g
	h.w.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		<-g.Done()
		c.mu.Lock()
		sp.end, sp.err = time.Now(), g.Err()
		c.mu.Unlock()
	}()
}

func (h *handler) HandoffRequested(g *lease.Grant, to string) {
	h.w.c.wg.Add(1)
	go func() {
		defer h.w.c.wg.Done()
		time.Sleep(100 * time.Millisecond) // finish the in-flight batch
		_ = h.w.co.Transfer(context.Background(), g, checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "42"}}, to)
	}()
}

// takenFresh counts the grants after a shard's first that were not
// Handed: the ones taken from an owner declared dead.
func (c *cluster) takenFresh() (firsts, fresh int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sps := range c.spans {
		for i, sp := range sps {
			switch {
			case i == 0 && sp.handed:
				c.t.Errorf("the first grant of a shard (epoch %d, %s) is Handed; nobody owned it before", sp.epoch, sp.worker)
			case i == 0:
				firsts++
			case !sp.handed:
				fresh++
			}
		}
	}
	return firsts, fresh
}

// owners returns lease count per worker name in the table.
func (c *cluster) owners() map[string]int {
	snap, _ := c.fake.Snapshot(context.Background())
	m := map[string]int{}
	for _, l := range snap.Leases {
		if l.Owner == "" {
			m[""]++
			continue
		}
		m[lease.WorkerName(l.Owner)]++
	}
	return m
}

// held returns the shards each worker processes now.
func (c *cluster) held() map[string]int {
	m := map[string]int{}
	for name, w := range c.workers {
		m[name] = len(w.co.Held())
	}
	return m
}

func (c *cluster) eventually(what string, within time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("never within %s: %s (owners %v, processing %v)", within, what, c.owners(), c.held())
}

// balanced reports whether names hold every one of total leases between
// them, spread within one.
func balanced(m map[string]int, total int, names ...string) bool {
	lo, hi, sum := 1<<30, 0, 0
	for _, id := range names {
		lo, hi, sum = min(lo, m[id]), max(hi, m[id]), sum+m[id]
	}
	return sum == total && hi-lo <= 1
}

// checkNoOverlap is the invariant: for every shard, a worker's grant ended
// before (or when) the next worker's grant began. Grants still running
// end now.
func (c *cluster) checkNoOverlap() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for shard, spans := range c.spans {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
		for i := 1; i < len(spans); i++ {
			prev, next := spans[i-1], spans[i]
			end := prev.end
			if end.IsZero() {
				end = time.Now()
			}
			if next.start.Before(end) {
				c.t.Errorf("shard %s: %s (epoch %d) processed until %s, but %s (epoch %d) started at %s",
					shard, prev.worker, prev.epoch, end.Format("15:04:05.000"), next.worker, next.epoch, next.start.Format("15:04:05.000"))
			}
		}
	}
}

func (c *cluster) spansOf(shard string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans[shard] {
		out = append(out, *s)
	}
	return out
}

var errPartitioned = errors.New("partitioned")

func partitioned(context.Context, string) error { return errPartitioned }

func testLog(t *testing.T) *zap.Logger {
	if testing.Verbose() && os.Getenv("LEASE_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}
