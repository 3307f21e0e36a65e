package redrive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

// Target is where Replay sends dead letters.
type Target interface {
	// Replay sends letters, all of one stream and shard, in shard order,
	// and returns one outcome per letter: nil when it was delivered, or
	// why not (it failed again and is dead-lettered again). An error
	// means the target cannot go on (ctx ended, a sink is broken); the
	// letters' fate is then unknown and none is marked replayed.
	Replay(ctx context.Context, letters []Letter) ([]error, error)
	// Close releases the target.
	Close(ctx context.Context) error
}

// ErrRefused is the outcome of a dead letter a target will not replay.
var ErrRefused = errors.New("redrive: not replayed by this target")

// Options tune Replay.
type Options struct {
	// Filter selects the dead letters.
	Filter Filter
	// BatchSize is how many dead letters of one shard go to the target at
	// once, and are then recorded in the ledger. Default 500.
	BatchSize int
	// DryRun selects and counts without sending anything.
	DryRun bool
	// Progress, when set, is called from one goroutine every
	// ProgressInterval (default 1s) and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Now is the clock of the ledger; default time.Now.
	Now func() time.Time
}

// Progress is a snapshot of a replay.
type Progress struct {
	Selected int // dead letters to replay
	Done     int // of them, with an outcome
	Replayed int // delivered
	Failed   int // failed again, or refused
	Elapsed  time.Duration
	Final    bool
}

// Summary is the outcome of a Replay.
type Summary struct {
	Scanned         int // dead letters read
	Unreadable      int // lines that were not dead letters
	AlreadyReplayed int // matched the filter but a replay covered them before
	Duplicates      int // the same record and stage dead-lettered more than once: sent once
	Selected        int // dead letters to replay (after duplicates)
	Replayed        int // delivered
	FailedAgain     int // failed again: stored as new dead letters
	Refused         int // not replayed by this target (see Failures)
	ByStage         map[string]int
	// Failures lists the first 100 letters not replayed, with why.
	Failures []Failure
	Duration time.Duration
	DryRun   bool
}

// Failure is a dead letter a replay did not deliver.
type Failure struct {
	Letter Letter
	Err    error
}

// OK reports whether every selected dead letter was delivered.
func (s Summary) OK() bool { return s.FailedAgain == 0 && s.Refused == 0 }

// Replay reads the store, selects dead letters with opt.Filter (skipping
// those a replay already covered), sends each record once — grouped by
// shard, in shard order, opt.BatchSize at a time — to target, and records
// every delivered one in the store's ledger. It returns the summary and
// an error only when the store could not be read or the target or the
// ledger failed; dead letters that fail again are counted, not errors.
func Replay(ctx context.Context, store Store, target Target, opt Options) (Summary, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	began := opt.Now()
	sum := Summary{ByStage: map[string]int{}, DryRun: opt.DryRun}
	byKey := map[string]Letter{}
	all := opt.Filter
	all.IncludeReplayed = true
	err := store.Scan(ctx, opt.Filter.Since, opt.Filter.Until, func(l Letter) error {
		sum.Scanned++
		if !all.Match(l) {
			return nil
		}
		if !opt.Filter.IncludeReplayed && !l.Replayed.IsZero() {
			sum.AlreadyReplayed++
			return nil
		}
		k := l.Key()
		if prev, ok := byKey[k]; ok {
			sum.Duplicates++
			if !l.FailedAt.After(prev.FailedAt) {
				return nil
			}
		}
		byKey[k] = l
		return nil
	}, func(error) { sum.Unreadable++ })
	if err != nil {
		return sum, err
	}

	groups := groupByShard(byKey)
	sum.Selected = len(byKey)
	for _, l := range byKey {
		sum.ByStage[l.Stage]++
	}
	if opt.DryRun || sum.Selected == 0 {
		sum.Duration = opt.Now().Sub(began)
		return sum, nil
	}

	prog := &progress{p: Progress{Selected: sum.Selected}, began: began}
	stop := prog.start(opt)
	defer stop()
	for _, g := range groups {
		for i := 0; i < len(g); i += opt.BatchSize {
			batch := g[i:min(i+opt.BatchSize, len(g))]
			outcomes, err := target.Replay(ctx, batch)
			if err != nil {
				sum.Duration = opt.Now().Sub(began)
				return sum, fmt.Errorf("redrive: replay %s %s: %w", batch[0].Stream, batch[0].ShardID, err)
			}
			var ok []Letter
			var failed int
			for j, l := range batch {
				outcome := outcomes[j]
				switch {
				case outcome == nil:
					ok = append(ok, l)
					continue
				case errors.Is(outcome, ErrRefused):
					sum.Refused++
				default:
					sum.FailedAgain++
				}
				failed++
				if len(sum.Failures) < 100 {
					sum.Failures = append(sum.Failures, Failure{Letter: l, Err: outcome})
				}
			}
			if err := store.MarkReplayed(ctx, ok, opt.Now()); err != nil {
				sum.Duration = opt.Now().Sub(began)
				return sum, fmt.Errorf("redrive: %d dead letters were replayed but not recorded, so a later replay sends them again: %w", len(ok), err)
			}
			sum.Replayed += len(ok)
			prog.add(len(ok), failed)
		}
	}
	sum.Duration = opt.Now().Sub(began)
	return sum, nil
}

// groupByShard returns the letters per stream and shard, each group in
// shard order, groups in a stable order.
func groupByShard(byKey map[string]Letter) [][]Letter {
	idx := map[string]int{}
	var groups [][]Letter
	var names []string
	for _, l := range byKey {
		k := l.Stream + "\x00" + l.ShardID
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, nil)
			names = append(names, k)
		}
		groups[i] = append(groups[i], l)
	}
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	out := make([][]Letter, 0, len(groups))
	for _, i := range order {
		g := groups[i]
		sort.SliceStable(g, func(a, b int) bool {
			pa, pb := g[a].Position(), g[b].Position()
			if pa == pb {
				return g[a].Stage < g[b].Stage
			}
			return checkpoint.Less(pa, pb)
		})
		out = append(out, g)
	}
	return out
}

// progress counts a replay for Options.Progress.
type progress struct {
	mu    sync.Mutex
	p     Progress
	began time.Time
}

func (pr *progress) add(replayed, failed int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.p.Replayed += replayed
	pr.p.Failed += failed
	pr.p.Done += replayed + failed
}

func (pr *progress) snapshot() Progress {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	p := pr.p
	p.Elapsed = time.Since(pr.began)
	return p
}

// start calls opt.Progress every interval until the returned func, which
// makes the final call.
func (pr *progress) start(opt Options) (stop func()) {
	if opt.Progress == nil {
		return func() {}
	}
	every := opt.ProgressInterval
	if every <= 0 {
		every = time.Second
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				opt.Progress(pr.snapshot())
			case <-quit:
				p := pr.snapshot()
				p.Final = true
				opt.Progress(p)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// ListSummary counts what List saw.
type ListSummary struct {
	Scanned, Matched, Unreadable int
	Replayed                     int            // matched, covered by a replay (shown with IncludeReplayed)
	ByStage                      map[string]int // matched, by stage
	ByReason                     map[string]int // matched, by stage and the reason's first 80 characters
}

// List calls fn for each dead letter f selects, in the store's order,
// and counts them.
func List(ctx context.Context, store Store, f Filter, fn func(Letter) error) (ListSummary, error) {
	sum := ListSummary{ByStage: map[string]int{}, ByReason: map[string]int{}}
	err := store.Scan(ctx, f.Since, f.Until, func(l Letter) error {
		sum.Scanned++
		if !f.Match(l) {
			return nil
		}
		sum.Matched++
		if !l.Replayed.IsZero() {
			sum.Replayed++
		}
		sum.ByStage[l.Stage]++
		sum.ByReason[l.Stage+": "+truncate(l.Error, 80)]++
		return fn(l)
	}, func(error) { sum.Unreadable++ })
	return sum, err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
