package lease_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// passLog records when each pass of one coordinator began: its first
// read of the table (a Snapshot or a Poll; a pass makes exactly one).
type passLog struct {
	mu    sync.Mutex
	at    []time.Time
	fail  func(method string) error // nil: healthy
	store *leasetest.Faulty
}

func newPassLog(fake *leasetest.Fake) *passLog {
	l := &passLog{}
	l.store = &leasetest.Faulty{Store: fake, Before: func(_ context.Context, method string) error {
		if method != "Snapshot" && method != "Poll" {
			return nil
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.at = append(l.at, time.Now())
		if l.fail != nil {
			return l.fail(method)
		}
		return nil
	}}
	return l
}

func (l *passLog) passes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

func (l *passLog) setFail(f func(string) error) {
	l.mu.Lock()
	l.fail = f
	l.mu.Unlock()
}

func onGrid(t, origin time.Time, every time.Duration) bool { return t.Sub(origin)%every == 0 }

// runAligned runs one coordinator with TakeInterval 1s over a table of 4
// leases, on the grid origin + n·every when every > 0, until body
// returns.
func runAligned(t *testing.T, origin time.Time, every time.Duration, body func(c *lease.Coordinator, log *passLog)) {
	t.Helper()
	fake := leasetest.NewFake()
	for i := range 4 {
		if err := fake.Create(context.Background(), lease.Lease{ShardID: fmt.Sprintf("shard-%d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
	}
	log := newPassLog(fake)
	cfg := fast
	cfg.WorkerID = "w"
	c, err := lease.NewCoordinator(log.store, cfg, nopHandler{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if every > 0 {
		c.AlignPasses(origin, every)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { // also when body fails: the bubble ends only once Run returned
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	body(c, log)
}

// TestRegularPassesFallOnTheGrid: with a pass grid (a worker's poll grid
// of 1 s, at a phase of its own), every regular pass is at an instant of
// the grid (all but the first, which waits one take interval as without
// a grid), and no instant is skipped: one pass a second, as before, in the same wake-up
// as the worker's polls. Without AlignPasses the passes are ±10% apart
// and fall on no grid.
func TestRegularPassesFallOnTheGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		origin := start.Add(370 * time.Millisecond)
		runAligned(t, origin, time.Second, func(_ *lease.Coordinator, log *passLog) {
			time.Sleep(60*time.Second + time.Millisecond)
			passes := log.passes()
			// The first pass waits one take interval ±10%, as without a
			// grid; the second is on the grid, nearest a take interval on.
			if first := passes[0].Sub(start); first < 900*time.Millisecond || first > 1100*time.Millisecond {
				t.Errorf("first pass %s after the start, want the take interval ±10%%", first)
			}
			passes = passes[1:]
			for i, p := range passes {
				if !onGrid(p, origin, time.Second) {
					t.Fatalf("pass %d at %s, not on the grid (origin +0.37 s, every 1 s)", i, p.Sub(start))
				}
				if i > 0 && p.Sub(passes[i-1]) != time.Second {
					t.Fatalf("passes %d and %d %s apart, want one grid step: none skipped", i-1, i, p.Sub(passes[i-1]))
				}
			}
			if n := len(passes); n != 58 { // 2.37 s … 59.37 s
				t.Errorf("%d passes on the grid in 60 s, want 58", n)
			}
		})
	})
}

// TestPassesOnAGridOfHalfSeconds: a grid finer than the take interval
// (idle_time 500ms) keeps one pass a take interval, every one on an
// instant of the grid.
func TestPassesOnAGridOfHalfSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		origin := start.Add(-4*time.Hour + 123*time.Millisecond) // an origin long before: the grid is all that counts
		runAligned(t, origin, 500*time.Millisecond, func(_ *lease.Coordinator, log *passLog) {
			time.Sleep(30 * time.Second)
			passes := log.passes()[1:]
			for i, p := range passes {
				if !onGrid(p, origin, 500*time.Millisecond) {
					t.Fatalf("pass %d at %s, not on the grid", i, p.Sub(start))
				}
				if i > 0 && p.Sub(passes[i-1]) != time.Second {
					t.Fatalf("passes %d and %d %s apart, want the take interval", i-1, i, p.Sub(passes[i-1]))
				}
			}
		})
	})
}

// TestAGridCoarserThanTheTakeIntervalIsNotUsed: waiting for instants 5 s
// apart would slow every reaction of the coordinator, so a grid coarser
// than the take interval leaves the passes as they were: ±10% of it.
func TestAGridCoarserThanTheTakeIntervalIsNotUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runAligned(t, time.Now(), 5*time.Second, func(_ *lease.Coordinator, log *passLog) {
			time.Sleep(30 * time.Second)
			passes := log.passes()
			if len(passes) < 27 {
				t.Fatalf("%d passes in 30 s, want one a take interval", len(passes))
			}
			for i := 1; i < len(passes); i++ {
				if d := passes[i].Sub(passes[i-1]); d < 900*time.Millisecond || d > 1100*time.Millisecond {
					t.Fatalf("passes %d and %d %s apart, want the take interval ±10%%", i-1, i, d)
				}
			}
		})
	})
}

// TestKicksAndFailuresOnAGrid: the grid moves only the
// regular wait. A kick runs a pass at once, off the grid; the pass after
// it is back on the grid within half a step of a take interval; failed
// passes back off as without a grid (2 s, 4 s, 8 s, ±10%), off the grid;
// once the table answers again the passes return to the grid.
func TestKicksAndFailuresOnAGrid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		origin := start.Add(250 * time.Millisecond)
		runAligned(t, origin, time.Second, func(c *lease.Coordinator, log *passLog) {
			time.Sleep(5*time.Second + 600*time.Millisecond) // passes at 1.25 … 5.25 s
			kicked := time.Now()
			c.Kick()
			synctest.Wait()
			passes := log.passes()
			if last := passes[len(passes)-1]; !last.Equal(kicked) {
				t.Fatalf("kicked at %s, last pass at %s: a kick must run a pass at once", kicked.Sub(start), last.Sub(start))
			}
			time.Sleep(1600 * time.Millisecond)
			passes = log.passes()
			after := passes[len(passes)-1]
			if !onGrid(after, origin, time.Second) || after.Sub(kicked) < 500*time.Millisecond || after.Sub(kicked) > 1500*time.Millisecond {
				t.Fatalf("pass after the kick at %s (kick at %s), want the grid instant nearest a take interval on", after.Sub(start), kicked.Sub(start))
			}

			n := len(passes)
			boom := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}},
				Err: &smithy.GenericAPIError{Code: "InternalServerError"}}
			log.setFail(func(string) error { return boom })
			time.Sleep(17 * time.Second)
			log.setFail(nil)
			passes = log.passes()
			failed := passes[n:]
			if len(failed) < 4 {
				t.Fatalf("%d passes in 17 s of failures, want 4 or more", len(failed))
			}
			// failed[0] is the first to fail; the waits after it double.
			for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
				if d := failed[i+1].Sub(failed[i]); d < want*9/10 || d > want*11/10 {
					t.Errorf("wait after failure %d: %s, want %s ±10%% (as without a grid)", i+1, d, want)
				}
			}
			offGrid := 0
			for _, p := range failed[1:4] {
				if !onGrid(p, origin, time.Second) {
					offGrid++
				}
			}
			if offGrid == 0 {
				t.Errorf("every backed-off pass on the grid: the backoff was rounded to it")
			}
			recovered := len(passes)
			time.Sleep(20 * time.Second)
			passes = log.passes()
			for _, p := range passes[recovered+1:] {
				if !onGrid(p, origin, time.Second) {
					t.Fatalf("pass at %s after the table recovered, not on the grid", p.Sub(start))
				}
			}
		})
	})
}

// TestFailoverOnPassGrids is the failover promise with every worker's
// passes on a grid of its own (random phases, as workers have): a worker
// that stops answering (killed, or cut off from the table) has all its
// leases processed by its peers within the lease duration plus 2 s, and
// no shard is processed by two workers at once.
func TestFailoverOnPassGrids(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 6)
		defer c.stopAll()
		phases := map[string]time.Duration{"A": 130 * time.Millisecond, "B": 470 * time.Millisecond, "C": 810 * time.Millisecond}
		t0 := time.Now()
		c.align = func(name string) (time.Time, time.Duration) { return t0.Add(phases[name]), time.Second }
		c.start("A", fast)
		c.start("B", fast)
		x := c.start("C", fast)
		c.eventually("6 shards spread over 3 workers", 10*time.Second, func() bool { return balanced(c.held(), 6, "A", "B", "C") })
		time.Sleep(3*time.Second + 77*time.Millisecond)
		killed := time.Now()
		x.setFault(partitioned)
		for c.held()["A"]+c.held()["B"] < 6 {
			time.Sleep(10 * time.Millisecond)
			if time.Since(killed) > time.Minute {
				t.Fatalf("C's leases not taken a minute after it stopped (processing %v)", c.held())
			}
		}
		took := time.Since(killed)
		t.Logf("C's shards processed by A and B %s after C stopped answering", took)
		if limit := fast.Duration + 2*time.Second; took > limit {
			t.Errorf("failover took %s, want at most the lease duration + 2 s (%s)", took, limit)
		}
		c.checkNoOverlap()
	})
}
