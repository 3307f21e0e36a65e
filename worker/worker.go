// Package worker consumes a Kinesis stream as one member of a fleet: it
// takes shard leases through package lease, runs one consumer per held
// shard, hands each batch to a ShardProcessor and checkpoints only what the
// processor reports durable.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
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

	consumerCtx context.Context // parent of every consumer; cancelled for a hard stop
	hardStop    context.CancelFunc

	mu        sync.Mutex
	consumers map[string]*consumer // guarded by mu: running consumers by shard
	wg        sync.WaitGroup       // consumer goroutines
}

// New returns a worker. cfg's zero fields take their defaults; an invalid
// cfg is an error.
func New(kin KinesisAPI, store lease.Store, factory ProcessorFactory, cfg Config, log *zap.Logger) (*Worker, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, kin: kin, store: store, factory: factory, log: log.With(zap.String("worker_id", cfg.Lease.WorkerID)), consumers: map[string]*consumer{}}
	coord, err := lease.NewCoordinator(store, cfg.Lease, (*handler)(w), log)
	if err != nil {
		return nil, err
	}
	w.coord = coord
	w.cfg.Lease = coord.Config()
	return w, nil
}

// Coordinator exposes the lease coordinator (for health and stats).
func (w *Worker) Coordinator() *lease.Coordinator { return w.coord }

// Run creates the lease table if needed, syncs shards into leases, and
// processes shards until ctx ends. Then it shuts down gracefully within
// ShutdownGrace: it stops taking leases and tells peers, lets every
// consumer finish its batch, flush and checkpoint, releases the leases so
// peers take them at once, and deletes its worker item. Consumers still
// busy at the deadline are stopped without a checkpoint (their records are
// replayed by the next owner). Run returns an error only if it could not
// start.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.store.EnsureTable(ctx); err != nil {
		return err
	}
	w.consumerCtx, w.hardStop = context.WithCancel(context.WithoutCancel(ctx))
	defer w.hardStop()

	// The coordinator starts before the first shard sync so that this
	// worker heartbeats (and peers count it) at once, even when ListShards
	// is slow; sync kicks the coordinator when it created leases.
	coordCtx, stopCoord := context.WithCancel(context.WithoutCancel(ctx))
	coordDone := make(chan error, 1)
	go func() { coordDone <- w.coord.Run(coordCtx) }()

	var runErr error
	coordFinished := false
	if err := w.syncShards(ctx); err != nil {
		if ctx.Err() == nil {
			runErr = err // e.g. the stream does not exist: stop cleanly and say so
		}
	} else {
		runCtx, cancelRun := context.WithCancel(ctx)
		syncDone := make(chan struct{})
		go func() { defer close(syncDone); w.syncLoop(runCtx) }()
		select {
		case <-ctx.Done():
		case runErr = <-coordDone:
			coordFinished = true
		}
		cancelRun()
		<-syncDone
	}

	w.shutdown()
	stopCoord()
	if !coordFinished {
		if err := <-coordDone; runErr == nil {
			runErr = err
		}
	}
	w.log.Info("worker stopped", zap.Any("lease_stats", w.coord.Stats()))
	return runErr
}

// shutdown releases every lease within the grace period.
func (w *Worker) shutdown() {
	deadline := time.Now().Add(w.cfg.ShutdownGrace)
	gctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	w.coord.BeginStop(gctx)
	w.mu.Lock()
	n := len(w.consumers)
	for _, c := range w.consumers {
		c.requestStop("")
	}
	w.mu.Unlock()
	w.log.Info("shutting down", zap.Int("shards", n), zap.Duration("grace", w.cfg.ShutdownGrace))
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-gctx.Done():
		w.log.Error("grace period over; stopping consumers without checkpoint")
		w.hardStop()
		<-done
	}
}

// handler adapts Worker to lease.Handler; calls come from the
// coordinator's goroutine.
type handler Worker

func (h *handler) Acquired(l lease.Lease) {
	w := (*Worker)(h)
	ctx, cancel := context.WithCancel(w.consumerCtx)
	c := &consumer{w: w, lease: l, log: w.log.With(zap.String("shard_id", l.ShardID)), stop: make(chan string, 1), cancel: cancel, done: make(chan struct{})}
	w.mu.Lock()
	if old, ok := w.consumers[l.ShardID]; ok {
		old.cancel() // an older consumer of the same shard must not write again
	}
	w.consumers[l.ShardID] = c
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		c.run(ctx)
		w.mu.Lock()
		if w.consumers[l.ShardID] == c {
			delete(w.consumers, l.ShardID)
		}
		w.mu.Unlock()
	}()
}

func (h *handler) Lost(shardID, reason string) {
	w := (*Worker)(h)
	w.mu.Lock()
	c := w.consumers[shardID]
	w.mu.Unlock()
	if c != nil {
		c.log.Warn("shard stopped: lease lost", zap.String("reason", reason))
		c.cancel()
	}
}

func (h *handler) HandoffRequested(shardID, to string) {
	w := (*Worker)(h)
	w.mu.Lock()
	c := w.consumers[shardID]
	w.mu.Unlock()
	if c != nil {
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

// syncShards creates a lease for every listed shard that has none. A
// shard whose parent is listed (a child of a reshard) starts at
// TRIM_HORIZON so none of its records are skipped; others start at the
// configured initial position. Parents no longer listed are left out of
// the lease's parents: they were trimmed and cannot gate anything.
func (w *Worker) syncShards(ctx context.Context) error {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(w.cfg.StreamName)}
	for {
		out, err := w.kin.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("list shards of %s: %w", w.cfg.StreamName, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	listed := map[string]bool{}
	for _, s := range shards {
		listed[aws.ToString(s.ShardId)] = true
	}
	snap, err := w.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range snap.Leases {
		have[l.ShardID] = true
	}
	created := 0
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if have[id] {
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
	if created > 0 {
		w.log.Info("leases created for new shards", zap.Int("created", created), zap.Int("shards", len(shards)))
		w.coord.Kick()
	}
	return nil
}

// createLease adds a lease; one that exists already is fine.
func (w *Worker) createLease(ctx context.Context, shardID string, parents []string, start checkpoint.Position) error {
	err := w.store.Create(ctx, lease.Lease{ShardID: shardID, Parents: parents, Checkpoint: checkpoint.Checkpoint{Position: start}})
	if err != nil && !errors.Is(err, lease.ErrExists) {
		return err
	}
	return nil
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
	return s
}
