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
	"github.com/leasehold/leasehold/lease/leasetest"
)

// SpreadConfig describes the spread scenarios: for each spread (shards per
// worker), Shards leases and Shards/spread lease coordinators in this
// process on an in-memory store that bills reads and writes as DynamoDB
// does; units are counted at rest and while one more worker joins.
type SpreadConfig struct {
	Shards  int   // default 64
	Spreads []int // default 1, 2, 4, 8, 16, 32, 64
	// Rest is the window over which units at rest are counted; it should
	// cover a scan interval (default 130s).
	Rest     time.Duration
	Lease    lease.Config // timings; zero fields take the defaults
	Progress io.Writer
}

// SpreadResult is one spread's figures.
type SpreadResult struct {
	Spread, Shards, Workers int
	// Rest is what Workers workers consumed at rest.
	Rest Cost
	// One worker joined: the time until the spread was within one again,
	// the planned moves (and the fewest possible), the scans, and the
	// units the join cost beyond the at-rest rate over the same time.
	JoinTime           time.Duration
	JoinMoves, JoinMin int
	JoinScans          int64
	Join               lease.Units
	// The Java KCL's units per hour at rest for the same leases and
	// workers (see KCLAtRest).
	KCL2, KCL3 lease.Units
}

// Dollars returns ours and the two KCL modes' dollars per shard-month at
// rest.
func (r SpreadResult) Dollars() (ours, kcl2, kcl3 float64) {
	return r.Rest.DollarsPerShardMonth(), dollarsPerShardMonth(r.KCL2.Read, r.KCL2.Write, r.Shards), dollarsPerShardMonth(r.KCL3.Read, r.KCL3.Write, r.Shards)
}

// JoinDollars is what one join costs, in dollars.
func (r SpreadResult) JoinDollars() float64 {
	return r.Join.Read*readPrice + r.Join.Write*writePrice
}

// RunSpreads runs every spread at once (each on its own store) and returns
// their figures in the order asked.
func RunSpreads(ctx context.Context, cfg SpreadConfig) ([]SpreadResult, error) {
	if cfg.Shards == 0 {
		cfg.Shards = 64
	}
	if len(cfg.Spreads) == 0 {
		cfg.Spreads = []int{1, 2, 4, 8, 16, 32, 64}
	}
	if cfg.Rest == 0 {
		cfg.Rest = 130 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
	out := make([]SpreadResult, len(cfg.Spreads))
	errs := make([]error, len(cfg.Spreads))
	var wg sync.WaitGroup
	for i, s := range cfg.Spreads {
		if s <= 0 || cfg.Shards%s != 0 {
			return nil, fmt.Errorf("bench: spread %d does not divide %d shards", s, cfg.Shards)
		}
		wg.Go(func() { out[i], errs[i] = runSpread(ctx, cfg, s, say) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func runSpread(ctx context.Context, cfg SpreadConfig, spread int, say func(string, ...any)) (SpreadResult, error) {
	workers := cfg.Shards / spread
	res := SpreadResult{Spread: spread, Shards: cfg.Shards, Workers: workers}
	r2, w2 := KCLAtRest(KCL2, cfg.Shards, workers)
	r3, w3 := KCLAtRest(KCL3, cfg.Shards, workers)
	res.KCL2, res.KCL3 = lease.Units{Read: r2, Write: w2}, lease.Units{Read: r3, Write: w3}
	store := leasetest.NewFake()
	for i := range cfg.Shards {
		l := lease.Lease{ShardID: fmt.Sprintf("shardId-%012d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}
		if err := store.Create(ctx, l); err != nil {
			return res, err
		}
	}
	f := &fleet{store: store, cfg: cfg.Lease, name: fmt.Sprintf("spread%02d-w", spread)}
	defer f.stop(ctx)
	f.start(ctx, workers)
	if _, err := f.balanced(ctx, cfg.Shards, 2*time.Minute); err != nil {
		return res, fmt.Errorf("spread %d: %w", spread, err)
	}
	// Let the looks of convergence settle before counting.
	if err := sleep(ctx, 10*time.Second); err != nil {
		return res, err
	}
	say("spreads: %d shards per worker (%d workers) balanced; counting %s at rest", spread, workers, cfg.Rest)
	u0 := store.Units()
	if err := sleep(ctx, cfg.Rest); err != nil {
		return res, err
	}
	u1 := store.Units()
	res.Rest = Cost{Window: cfg.Rest, Shards: cfg.Shards, Read: u1.Read - u0.Read, Write: u1.Write - u0.Write}

	m0, s0, t0 := f.stats().HandedOff, f.stats().Scans, time.Now()
	f.start(ctx, 1)
	took, err := f.balanced(ctx, cfg.Shards, 2*time.Minute)
	if err != nil {
		return res, fmt.Errorf("spread %d, one more worker: %w", spread, err)
	}
	// The moves agreed last are still completing; the look-agains stop.
	if err := sleep(ctx, 10*time.Second); err != nil {
		return res, err
	}
	u2, elapsed := store.Units(), time.Since(t0)
	st := f.stats()
	res.JoinTime, res.JoinMoves, res.JoinScans = took, int(st.HandedOff-m0), st.Scans-s0
	res.JoinMin = cfg.Shards / (workers + 1) // the joiner's floor, taken from the others
	// Beyond what the (one more) workers cost at rest meanwhile.
	restRate := func(u float64) float64 { return u / cfg.Rest.Seconds() * float64(workers+1) / float64(workers) }
	res.Join = lease.Units{
		Read:  max(0, u2.Read-u1.Read-restRate(res.Rest.Read)*elapsed.Seconds()),
		Write: max(0, u2.Write-u1.Write-restRate(res.Rest.Write)*elapsed.Seconds()),
	}
	say("spreads: %d shards per worker: one more worker balanced in %s with %d moves", spread, took.Round(100*time.Millisecond), res.JoinMoves)
	return res, nil
}

// fleet is lease coordinators in this process sharing one store.
type fleet struct {
	store   lease.Store
	cfg     lease.Config
	name    string
	wg      sync.WaitGroup
	workers []*scaleWorker
}

func (f *fleet) start(ctx context.Context, n int) {
	for range n {
		cfg := f.cfg
		cfg.WorkerID = fmt.Sprintf("%s%03d", f.name, len(f.workers)+1)
		h := &scaleHandler{wg: &f.wg}
		co, err := lease.NewCoordinator(f.store, cfg, h, zap.NewNop())
		if err != nil {
			panic(err) // the store and config are the bench's own
		}
		h.co = co
		wctx, cancel := context.WithCancel(ctx)
		w := &scaleWorker{co: co, cancel: cancel, done: make(chan struct{})}
		f.workers = append(f.workers, w)
		go func() { defer close(w.done); _ = co.Run(wctx) }()
	}
}

func (f *fleet) stop(ctx context.Context) {
	for _, w := range f.workers {
		w.cancel()
	}
	for _, w := range f.workers {
		<-w.done
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		w.co.Leave(lctx)
		cancel()
	}
	f.wg.Wait()
}

func (f *fleet) stats() lease.Stats { return sumStats(f.workers) }

// balanced waits until every lease is processed and the spread is within
// one, and returns how long that took.
func (f *fleet) balanced(ctx context.Context, shards int, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for time.Since(t0) < limit {
		lo, hi, sum := shards, 0, 0
		for _, w := range f.workers {
			n := len(w.co.Held())
			lo, hi, sum = min(lo, n), max(hi, n), sum+n
		}
		if sum == shards && hi-lo <= 1 {
			return time.Since(t0), nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%d leases over %d workers never balanced within %s", shards, len(f.workers), limit)
}
