package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// ScaleConfig describes one scale scenario: lease coordinators in this
// process (no Kinesis, no records) sharing one lease store.
type ScaleConfig struct {
	Backend string      // what Store is, for the report
	Store   lease.Store // must implement lease.Metered
	Shards  int
	Workers int
	// Add is how many workers join once the first ones are balanced
	// (default Workers/10, at least 1).
	Add int
	// Rest is the window over which units at rest are counted; it should
	// cover a scan interval (default 130s).
	Rest time.Duration
	// Settle is how long to wait after the scale-out before counting
	// units at rest (default a scan interval and a quarter plus 10 s): the
	// joins are not announced, and the first turn of the periodic scan
	// after them announces them once (every worker scans the table once);
	// that belongs to the scale-out, not to the fleet at rest.
	Settle   time.Duration
	Lease    lease.Config // timings; zero fields take the defaults
	Progress io.Writer
}

// ScaleResult is what a scale scenario measured.
type ScaleResult struct {
	Backend         string
	Shards, Workers int
	// ColdStart is the time from starting every worker together on
	// unowned leases to a balanced spread, and ColdMoves the planned
	// moves it took (the minimum is 0).
	ColdStart time.Duration
	ColdMoves int64
	// Added workers joined; ScaleOut is the time to balance again and
	// ScaleOutMoves the moves, against ScaleOutMin, the fewest possible.
	Added         int
	ScaleOut      time.Duration
	ScaleOutMoves int64
	ScaleOutMin   int
	// During the scale-out, from the join to balanced: whole-table scans
	// and handoff requests by all workers, leases fenced or lost, and
	// the capacity the lease table consumed.
	ScaleOutScans, ScaleOutRequests, ScaleOutFenced, ScaleOutLost int64
	ScaleOutUnits                                                 lease.Units
	Rest                                                          Cost
}

// scaleHandler holds what it is given and hands over at once when asked.
type scaleHandler struct {
	co *lease.Coordinator
	wg *sync.WaitGroup
}

func (h *scaleHandler) Acquired(*lease.Grant) {}

func (h *scaleHandler) HandoffRequested(g *lease.Grant, to string) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		_ = h.co.Transfer(context.Background(), g, g.Lease().Checkpoint, to)
	}()
}

type scaleWorker struct {
	co     *lease.Coordinator
	cancel context.CancelFunc
	done   chan struct{}
}

// RunScale runs the scenario and stops every coordinator before it
// returns.
func RunScale(ctx context.Context, cfg ScaleConfig) (ScaleResult, error) {
	if cfg.Add == 0 {
		cfg.Add = max(cfg.Workers/10, 1)
	}
	if cfg.Rest == 0 {
		cfg.Rest = 130 * time.Second
	}
	if cfg.Settle == 0 {
		every := cfg.Lease.ScanInterval
		if every == 0 {
			every = 2 * time.Minute
		}
		cfg.Settle = every + every/4 + 10*time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	res := ScaleResult{Backend: cfg.Backend, Shards: cfg.Shards, Workers: cfg.Workers, Added: cfg.Add}
	meter, ok := cfg.Store.(lease.Metered)
	if !ok {
		return res, fmt.Errorf("bench: the %s store does not count capacity units", cfg.Backend)
	}
	if err := cfg.Store.EnsureTable(ctx); err != nil {
		return res, err
	}
	say("scale (%s): creating %d leases", cfg.Backend, cfg.Shards)
	for i := range cfg.Shards {
		l := lease.Lease{ShardID: fmt.Sprintf("shardId-%012d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}
		if err := cfg.Store.Create(ctx, l); err != nil {
			return res, err
		}
	}
	var wg sync.WaitGroup
	var workers []*scaleWorker
	defer func() {
		for _, w := range workers {
			w.cancel()
		}
		for _, w := range workers {
			<-w.done
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			w.co.Leave(lctx)
			cancel()
		}
		wg.Wait()
	}()
	store := cfg.Store
	start := func(n int) error {
		for range n {
			cfg := cfg.Lease
			cfg.WorkerID = fmt.Sprintf("scale-w%03d", len(workers)+1)
			h := &scaleHandler{wg: &wg}
			co, err := lease.NewCoordinator(store, cfg, h, zap.NewNop())
			if err != nil {
				return err
			}
			h.co = co
			wctx, cancel := context.WithCancel(ctx)
			w := &scaleWorker{co: co, cancel: cancel, done: make(chan struct{})}
			workers = append(workers, w)
			go func() { defer close(w.done); _ = co.Run(wctx) }()
		}
		return nil
	}
	moves := func() int64 {
		var n int64
		for _, w := range workers {
			n += w.co.Stats().HandedOff
		}
		return n
	}
	total := func() lease.Stats { return sumStats(workers) }
	balanced := func(limit time.Duration) (time.Duration, error) {
		t0 := time.Now()
		next := t0.Add(10 * time.Second)
		for time.Since(t0) < limit {
			lo, hi, sum := cfg.Shards, 0, 0
			for _, w := range workers {
				n := len(w.co.Held())
				lo, hi, sum = min(lo, n), max(hi, n), sum+n
			}
			if sum == cfg.Shards && hi-lo <= 1 {
				return time.Since(t0), nil
			}
			if time.Now().After(next) {
				t := total()
				say("scale (%s): after %s: %d of %d leases held, %d to %d per worker, %d moves; %d fenced, %d declared dead, %d scans", cfg.Backend, time.Since(t0).Round(time.Second), sum, cfg.Shards, lo, hi, moves(), t.Fenced, t.Reincarnations, t.Scans)
				next = next.Add(10 * time.Second)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return 0, err
			}
		}
		return 0, fmt.Errorf("bench: %d leases over %d workers never balanced within %s", cfg.Shards, len(workers), limit)
	}

	say("scale (%s): cold start of %d workers on %d unowned leases", cfg.Backend, cfg.Workers, cfg.Shards)
	if err := start(cfg.Workers); err != nil {
		return res, err
	}
	var err error
	if res.ColdStart, err = balanced(5 * time.Minute); err != nil {
		return res, err
	}
	res.ColdMoves = moves()
	time.Sleep(3 * time.Second)

	say("scale (%s): %d more workers join", cfg.Backend, cfg.Add)
	m0, s0, u0 := moves(), total(), meter.Units()
	if err := start(cfg.Add); err != nil {
		return res, err
	}
	if res.ScaleOut, err = balanced(5 * time.Minute); err != nil {
		return res, err
	}
	s1, u1 := total(), meter.Units()
	res.ScaleOutScans, res.ScaleOutRequests = s1.Scans-s0.Scans, s1.Requested-s0.Requested
	res.ScaleOutUnits = lease.Units{Read: u1.Read - u0.Read, Write: u1.Write - u0.Write}
	time.Sleep(3 * time.Second)
	res.ScaleOutMoves = moves() - m0
	res.ScaleOutMin = cfg.Add * (cfg.Shards / len(workers))
	s2 := total()
	res.ScaleOutFenced, res.ScaleOutLost = s2.Fenced-s0.Fenced, s2.Lost-s0.Lost

	say("scale (%s): scale-out took %s: %d moves (minimum %d), %d requests, %d scans, %d fenced, %d lost",
		cfg.Backend, res.ScaleOut.Round(100*time.Millisecond), res.ScaleOutMoves, res.ScaleOutMin, res.ScaleOutRequests, res.ScaleOutScans, res.ScaleOutFenced, res.ScaleOutLost)
	say("scale (%s): settling for %s (the next turn of the periodic scan announces the joins)", cfg.Backend, cfg.Settle)
	u0, s0 = meter.Units(), total()
	if err := sleep(ctx, cfg.Settle); err != nil {
		return res, err
	}
	u1, s1 = meter.Units(), total()
	say("scale (%s): while settling: %d scans, %.0f read / %.0f write units", cfg.Backend, s1.Scans-s0.Scans, u1.Read-u0.Read, u1.Write-u0.Write)
	say("scale (%s): at rest for %s", cfg.Backend, cfg.Rest)
	u0, s0 = meter.Units(), total()
	if err := sleep(ctx, cfg.Rest); err != nil {
		return res, err
	}
	u1 = meter.Units()
	res.Rest = Cost{Window: cfg.Rest, Shards: cfg.Shards, Read: u1.Read - u0.Read, Write: u1.Write - u0.Write}
	say("scale (%s): at rest: %d scans, %.0f read / %.0f write units", cfg.Backend, total().Scans-s0.Scans, res.Rest.Read, res.Rest.Write)
	return res, nil
}

// sumStats adds up the counters the scale and spread scenarios report,
// over every in-process worker.
func sumStats(workers []*scaleWorker) lease.Stats {
	var t lease.Stats
	for _, w := range workers {
		s := w.co.Stats()
		t.HandedOff += s.HandedOff
		t.Scans += s.Scans
		t.Requested += s.Requested
		t.Fenced += s.Fenced
		t.Lost += s.Lost
		t.Reincarnations += s.Reincarnations
	}
	return t
}
