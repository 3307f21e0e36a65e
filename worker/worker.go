// Package worker consumes a Kinesis stream as one member of a fleet: it
// takes shard leases through package lease, runs one consumer per held
// shard, hands each batch to a ShardProcessor and checkpoints only what the
// processor reports durable.
package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/lease"
)

// KinesisAPI is the part of the Kinesis client a worker uses.
type KinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Worker is one member of the fleet. Create with New, run with Run.
type Worker struct {
	cfg     Config
	kin     KinesisAPI
	store   lease.Store
	factory ProcessorFactory
	log     *zap.Logger
	coord   *lease.Coordinator
	metrics metrics
	grid    time.Time // origin of the caught-up consumers' shared poll grid (see pacer)

	// Set by Run before any consumer starts, read by consumers.
	consumerCtx context.Context    // parent of every lease context; cancelled for a hard stop
	hardStop    context.CancelFunc //
	runCancel   context.CancelCauseFunc

	mu        sync.Mutex
	consumers map[string]*consumer // guarded by mu: running consumers by shard
	stopBy    time.Time            // guarded by mu: the shutdown deadline, zero while running
	stalls    map[string]error     // guarded by mu: shards whose reads fail for good, and why
	wg        sync.WaitGroup       // consumer goroutines
}

// New returns a worker. cfg's zero fields take their defaults. An invalid
// cfg is an error, and so is a nil dependency, named in the error: kin,
// store, factory or log (a lease.DynamoStore without a client or table is
// reported by lease.NewCoordinator).
func New(kin KinesisAPI, store lease.Store, factory ProcessorFactory, cfg Config, log *zap.Logger) (*Worker, error) {
	errs := []error{cfg.Validate()}
	if kin == nil {
		errs = append(errs, errors.New("worker: the Kinesis client is nil"))
	}
	if store == nil {
		errs = append(errs, errors.New("worker: the lease store is nil"))
	}
	if factory == nil {
		errs = append(errs, errors.New("worker: the processor factory is nil"))
	}
	if log == nil {
		errs = append(errs, errors.New("worker: the logger is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.defaults()
	w := &Worker{cfg: cfg, kin: kin, store: store, factory: factory, log: log.With(zap.String("worker_id", cfg.Lease.WorkerID)),
		consumers: map[string]*consumer{}, stalls: map[string]error{}}
	// A random phase, so that workers started together (a deployment, a
	// benchmark) do not all poll Kinesis in the same instant.
	w.grid = time.Now().Add(time.Duration(rand.Int64N(int64(cfg.IdleTime))))
	coord, err := lease.NewCoordinator(store, cfg.Lease, (*handler)(w), log)
	if err != nil {
		return nil, err
	}
	w.coord = coord
	w.cfg.Lease = coord.Config()
	// The coordinator's regular passes (one a take interval) wake the
	// process with the polls instead of on a timer of their own; the
	// random phase above keeps workers started together from reading the
	// lease table in the same instant. A grid coarser than the take
	// interval is not used (see AlignPasses).
	coord.AlignPasses(w.grid, cfg.IdleTime)
	return w, nil
}

// PollGrid returns the instants at which this worker polls its caught-up
// shards: origin + n·every for every integer n. Periodic work of the same
// process that runs on these instants (at a multiple of every) wakes the
// process together with the polls instead of on its own, as the lease
// coordinator's passes do (lease.Coordinator.AlignPasses) when every is
// at most the take interval.
func (w *Worker) PollGrid() (origin time.Time, every time.Duration) {
	return w.grid, w.cfg.IdleTime
}

// Coordinator exposes the lease coordinator (for health and stats).
func (w *Worker) Coordinator() *lease.Coordinator { return w.coord }

// Run creates the lease table if needed, syncs shards into leases, and
// processes shards until ctx ends. Then it shuts down within
// ShutdownGrace, in every state: it stops taking leases and tells peers,
// lets every consumer finish its batch, flush and checkpoint, releases the
// leases so peers take them at once, and deletes its worker item.
// Consumers still busy near the deadline are stopped without a checkpoint
// (their records are replayed by the next owner), and table calls that
// hang are abandoned at the deadline. Run returns an error if it could not
// start, or if the stream was deleted (ErrStreamDeleted).
func (w *Worker) Run(ctx context.Context) error {
	w.consumerCtx, w.hardStop = context.WithCancel(context.WithoutCancel(ctx))
	defer w.hardStop()
	if err := w.store.EnsureTable(ctx); err != nil {
		return err
	}
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	w.mu.Lock()
	w.runCancel = cancelRun
	w.mu.Unlock()

	// The coordinator starts before the first shard sync so that this
	// worker heartbeats (and peers count it) at once, even when ListShards
	// is slow; sync announces the leases it created.
	coordCtx, stopCoord := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCoord()
	coordDone := make(chan error, 1)
	go func() { coordDone <- w.coord.Run(coordCtx) }()

	var runErr error
	coordFinished := false
	if err := w.syncShards(runCtx); err != nil {
		if runCtx.Err() == nil {
			runErr = err // e.g. the stream does not exist: stop cleanly and say so
		}
	} else {
		syncDone := make(chan struct{})
		go func() { defer close(syncDone); w.syncLoop(runCtx) }()
		select {
		case <-runCtx.Done():
		case runErr = <-coordDone:
			coordFinished = true
		}
		cancelRun(nil)
		<-syncDone
	}
	if cause := context.Cause(runCtx); runErr == nil && errors.Is(cause, ErrStreamDeleted) {
		runErr = cause
	}

	deadline := time.Now().Add(w.cfg.ShutdownGrace)
	w.shutdown(deadline)
	stopCoord()
	if !coordFinished {
		select {
		case err := <-coordDone:
			if runErr == nil {
				runErr = err
			}
		case <-time.After(time.Until(deadline)):
			w.log.Error("lease coordinator did not stop by the deadline")
		}
	}
	lctx, cancel := context.WithDeadline(context.Background(), deadline)
	w.coord.Leave(lctx)
	cancel()
	w.log.Info("worker stopped", zap.Any("lease_stats", w.coord.Stats()))
	return runErr
}

// fail stops the worker with err (Run returns it).
func (w *Worker) fail(err error) {
	w.mu.Lock()
	cancel := w.runCancel
	w.mu.Unlock()
	w.log.Error("worker stopping", zap.Error(err))
	if cancel != nil {
		cancel(err)
	}
}

// shutdown releases every lease by the deadline. Consumers get until a
// fifth of the grace (at least a second) before the deadline to flush and
// release; then they are stopped hard, and whatever still hangs is left
// behind at the deadline so the worker can leave the table and exit.
func (w *Worker) shutdown(deadline time.Time) {
	reserve := max(w.cfg.ShutdownGrace/5, time.Second)
	soft := deadline.Add(-reserve)
	// After Stop no grant reaches Acquired, so every wg.Add happened
	// before the Wait below.
	w.coord.Stop()
	w.mu.Lock()
	w.stopBy = soft
	n := len(w.consumers)
	for _, c := range w.consumers {
		c.requestStop("")
	}
	w.mu.Unlock()
	w.log.Info("shutting down", zap.Int("shards", n), zap.Duration("grace", w.cfg.ShutdownGrace))

	// Tell peers in parallel: a hung table must not eat the grace period.
	began := make(chan struct{})
	go func() {
		defer close(began)
		bctx, cancel := context.WithDeadline(context.Background(), soft)
		defer cancel()
		w.coord.BeginStop(bctx)
	}()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(soft)):
		w.log.Error("grace period nearly over; stopping consumers without checkpoint")
		w.hardStop()
		select {
		case <-done:
		case <-time.After(time.Until(deadline) - reserve/2):
			w.log.Error("consumers did not stop; leaving them behind")
		}
	}
	select {
	case <-began:
	case <-time.After(time.Until(deadline) - reserve/2):
	}
}

// transferContext bounds a final transfer: by the shutdown's soft
// deadline while shutting down, else by the lease context's parent (the
// coordinator bounds each call too).
func (w *Worker) transferContext(ctx context.Context) (context.Context, context.CancelFunc) {
	w.mu.Lock()
	by := w.stopBy
	w.mu.Unlock()
	base := context.WithoutCancel(ctx)
	if by.IsZero() {
		return context.WithTimeout(base, w.cfg.Lease.CallTimeout)
	}
	return context.WithDeadline(base, by)
}

// handler adapts Worker to lease.Handler; calls come from the
// coordinator's goroutine.
type handler Worker

func (h *handler) Acquired(g *lease.Grant) {
	w := (*Worker)(h)
	l := g.Lease()
	c := &consumer{w: w, g: g, lease: l, log: w.log.With(zap.String("shard_id", l.ShardID)), stop: make(chan string, 1), done: make(chan struct{})}
	w.mu.Lock()
	w.consumers[l.ShardID] = c
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		c.run(w.consumerCtx)
		w.mu.Lock()
		if w.consumers[l.ShardID] == c {
			delete(w.consumers, l.ShardID)
		}
		delete(w.stalls, l.ShardID)
		w.mu.Unlock()
	}()
}

func (h *handler) HandoffRequested(g *lease.Grant, to string) {
	w := (*Worker)(h)
	w.mu.Lock()
	c := w.consumers[g.ShardID()]
	w.mu.Unlock()
	if c != nil && c.g == g {
		c.requestStop(to)
	}
}

// syncLoop lists shards every ShardSyncInterval until ctx ends.
func (w *Worker) syncLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ShardSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.syncShards(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("shard sync failed", zap.Error(err))
			}
		}
	}
}

func (w *Worker) listShards(ctx context.Context) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(w.cfg.StreamName)}
	for {
		out, err := w.kin.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", w.cfg.StreamName, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// syncShards creates a lease for every listed shard that has none, unless
// one of its descendants has a lease already (its lease was deleted once
// its children started: re-creating it would read it again). A shard whose
// parent is listed (a child of a reshard) starts at TRIM_HORIZON so none of
// its records are skipped; others start at the configured initial
// position. Parents that have neither a listing nor a lease are left out:
// they were trimmed and cannot gate anything. Ended leases of shards the
// stream no longer lists are deleted.
func (w *Worker) syncShards(ctx context.Context) error {
	shards, err := w.listShards(ctx)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	children := map[string][]string{}
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		listed[id] = true
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				children[*p] = append(children[*p], id)
			}
		}
	}
	snap, err := w.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range snap.Leases {
		have[l.ShardID] = true
	}
	var descendantLeased func(id string, depth int) bool
	descendantLeased = func(id string, depth int) bool {
		for _, ch := range children[id] {
			if have[ch] || (depth < 64 && descendantLeased(ch, depth+1)) {
				return true
			}
		}
		return false
	}
	created := 0
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if have[id] || descendantLeased(id, 0) {
			continue
		}
		var parents []string
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil && (listed[*p] || have[*p]) {
				parents = append(parents, *p)
			}
		}
		start := w.cfg.InitialPosition
		if len(parents) > 0 {
			start = checkpoint.Position{Sequence: checkpoint.TrimHorizon}
		}
		if err := w.createLease(ctx, id, parents, start); err != nil {
			return err
		}
		created++
	}
	deleted := 0
	for _, l := range snap.Leases {
		if l.Ended() && !listed[l.ShardID] {
			if err := w.store.Delete(ctx, l.ShardID); err == nil {
				deleted++
			}
		}
	}
	if created > 0 || deleted > 0 {
		w.log.Info("leases synced with the stream's shards", zap.Int("created", created), zap.Int("deleted_ended", deleted), zap.Int("shards", len(shards)))
	}
	if created > 0 {
		w.coord.Announce()
	}
	return nil
}

// shardGone tells, after a ResourceNotFound for a shard, whether the
// stream was deleted (ErrStreamDeleted) or the shard was trimmed away
// (errShardGone); nil if it is still listed or that cannot be told now.
func (w *Worker) shardGone(ctx context.Context, shardID string) error {
	shards, err := w.listShards(ctx)
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: %s", ErrStreamDeleted, w.cfg.StreamName)
	case err != nil:
		return nil
	}
	for _, s := range shards {
		if aws.ToString(s.ShardId) == shardID {
			return nil
		}
	}
	return errShardGone
}

// createLease adds a lease; one that exists already is fine.
func (w *Worker) createLease(ctx context.Context, shardID string, parents []string, start checkpoint.Position) error {
	err := w.store.Create(ctx, lease.Lease{ShardID: shardID, Parents: parents, Checkpoint: checkpoint.Checkpoint{Position: start}})
	if err != nil && !errors.Is(err, lease.ErrExists) {
		return err
	}
	return nil
}

// noteStall records that reading shardID failed with err. Errors that
// will not cure themselves (access denied, KMS key disabled, invalid
// argument) make the worker not ready until the shard reads again; they
// are logged once as errors.
func (w *Worker) noteStall(shardID string, err error) {
	if !awserr.Permanent(err) {
		return
	}
	w.mu.Lock()
	_, had := w.stalls[shardID]
	w.stalls[shardID] = err
	w.mu.Unlock()
	if !had {
		w.log.Error("shard stalled: reads fail and will until someone fixes the cause", zap.String("shard_id", shardID), zap.Error(err))
	}
}

func (w *Worker) clearStall(shardID string) {
	w.mu.Lock()
	_, had := w.stalls[shardID]
	delete(w.stalls, shardID)
	w.mu.Unlock()
	if had {
		w.log.Info("shard reads again", zap.String("shard_id", shardID))
	}
}

// Ready reports why the worker is not processing normally (nil when it
// is): its lease heartbeat is not current, the lease table refuses it,
// or shards stall on errors that will not cure themselves. Safe for
// concurrent use; meant for /readyz.
func (w *Worker) Ready() error {
	if err := w.coord.Health(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.stalls) == 0 {
		return nil
	}
	var parts []string
	for shard, err := range w.stalls {
		parts = append(parts, shard+": "+describeErr(err))
	}
	sort.Strings(parts)
	return fmt.Errorf("%d shards stalled (%s)", len(parts), strings.Join(parts, ", "))
}

// metrics are the worker's own counters; the metrics endpoint reads them.
type metrics struct {
	recordsIn   atomic.Int64
	checkpoints atomic.Int64
	lagMu       sync.Mutex
	lag         map[string]int64         // shard -> MillisBehindLatest
	reads       map[string]*readCounters // shard -> GetRecords counts; guarded by lagMu
}

func (m *metrics) observeLag(shard string, ms *int64) {
	if ms == nil {
		return
	}
	m.lagMu.Lock()
	if m.lag == nil {
		m.lag = map[string]int64{}
	}
	m.lag[shard] = *ms
	m.lagMu.Unlock()
}

// Stats is a snapshot of the worker's counters.
type Stats struct {
	RecordsIn   int64
	Checkpoints int64
	Shards      []string
	Lease       lease.Stats
	// MillisBehind is each held shard's MillisBehindLatest from its last
	// GetRecords.
	MillisBehind map[string]int64
	// Stalled is the number of shards whose reads fail with errors that
	// will not cure themselves.
	Stalled int
	// TableUnits is the lease-table capacity this worker consumed, when
	// the store counts it.
	TableUnits lease.Units
	// Reads counts GetRecords by shard, for every shard this worker has
	// read since it started.
	Reads map[string]ShardReads
}

// ShardReads counts one shard's GetRecords calls by this worker.
type ShardReads struct {
	Calls     int64 // every call, throttled ones included
	Throttled int64 // refused with ProvisionedThroughputExceeded
	Bytes     int64 // data and partition key bytes read
}

// Stats returns the worker's counters. Safe for concurrent use.
func (w *Worker) Stats() Stats {
	s := Stats{RecordsIn: w.metrics.recordsIn.Load(), Checkpoints: w.metrics.checkpoints.Load(), Lease: w.coord.Stats()}
	s.MillisBehind = map[string]int64{}
	s.Reads = map[string]ShardReads{}
	w.metrics.lagMu.Lock()
	held := w.coord.Held()
	for shard := range held {
		s.Shards = append(s.Shards, shard)
		if ms, ok := w.metrics.lag[shard]; ok {
			s.MillisBehind[shard] = ms
		}
	}
	for shard, rc := range w.metrics.reads {
		s.Reads[shard] = ShardReads{Calls: rc.calls.Load(), Throttled: rc.throttled.Load(), Bytes: rc.bytes.Load()}
	}
	w.metrics.lagMu.Unlock()
	w.mu.Lock()
	s.Stalled = len(w.stalls)
	w.mu.Unlock()
	if m, ok := w.store.(lease.Metered); ok {
		s.TableUnits = m.Units()
	}
	return s
}
