package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/leasehold/leasehold/checkpoint"
)

// Config holds the coordinator's timings. Zero fields take the defaults
// documented on each.
type Config struct {
	// WorkerID names this worker in the table. Required.
	WorkerID string
	// Duration: a worker whose heartbeat counter has not changed for this
	// long, as seen by a peer, may lose its leases. Default 10s.
	Duration time.Duration
	// RenewInterval: how often the heartbeat is written. Default 4s. At
	// most (Duration-SafetyMargin)/2 so that one failed heartbeat can be
	// retried before the worker fences itself.
	RenewInterval time.Duration
	// TakeInterval: how often the table is scanned to take, balance and
	// notice lost leases. Default 1s; jittered by ±10%.
	TakeInterval time.Duration
	// SafetyMargin: a worker that has not renewed for Duration minus this
	// margin stops processing every shard on its own, before any peer may
	// take them. Default 2s.
	SafetyMargin time.Duration
	// HandoffTimeout: a handoff this worker requested and that has not
	// happened in this time is cancelled. Default 2 × Duration.
	HandoffTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.SafetyMargin == 0 {
		c.SafetyMargin = 2 * time.Second
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = min(4*time.Second, (c.Duration-c.SafetyMargin)/2)
	}
	if c.TakeInterval == 0 {
		c.TakeInterval = time.Second
	}
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = 2 * c.Duration
	}
}

// Validate reports a configuration that cannot keep the lease promises.
func (c Config) Validate() error {
	var errs []error
	if c.WorkerID == "" {
		errs = append(errs, errors.New("lease: worker id must not be empty"))
	}
	if c.SafetyMargin <= 0 || c.SafetyMargin >= c.Duration {
		errs = append(errs, fmt.Errorf("lease: safety margin %s must be above 0 and below the duration %s", c.SafetyMargin, c.Duration))
	}
	if c.RenewInterval <= 0 || c.RenewInterval > (c.Duration-c.SafetyMargin)/2 {
		errs = append(errs, fmt.Errorf("lease: renew interval %s must be above 0 and at most (duration - safety margin)/2 = %s", c.RenewInterval, (c.Duration-c.SafetyMargin)/2))
	}
	if c.TakeInterval <= 0 {
		errs = append(errs, errors.New("lease: take interval must be above 0"))
	}
	return errors.Join(errs...)
}

// Handler is told about ownership changes. Its methods are called from the
// coordinator's goroutine and must return quickly (signal a consumer, do
// not process records).
type Handler interface {
	// Acquired: start processing l's shard from l.Checkpoint. Checkpoints
	// go through Coordinator.Checkpoint, which fences them on l.Epoch.
	Acquired(l Lease)
	// Lost: stop processing the shard at once and do not checkpoint; the
	// lease is no longer this worker's.
	Lost(shardID, reason string)
	// HandoffRequested: another worker asked for the lease. Finish the
	// in-flight batch, make it durable, then call Coordinator.Transfer
	// with the final checkpoint and to.
	HandoffRequested(shardID, to string)
}

// Stats counts the coordinator's lease events since start.
type Stats struct {
	Taken, HandedOff, Released, Lost, Requested, HeartbeatFailures int64
}

// Coordinator runs one worker's side of the lease protocol: a heartbeat
// goroutine and a coordination loop that takes, balances and notices lost
// leases. Create with NewCoordinator, start with Run. Its methods are safe
// for concurrent use.
type Coordinator struct {
	store Store
	cfg   Config
	h     Handler
	log   *zap.Logger
	now   func() time.Time // monotonic clock; injected in tests

	kick chan struct{} // capacity 1: "run a pass soon"

	mu        sync.Mutex
	held      map[string]int64     // guarded by mu: shard -> epoch we process
	requested map[string]time.Time // guarded by mu: our pending handoff requests
	stopping  bool                 // guarded by mu

	lastRenew atomic.Int64 // unix nanos (monotonic-derived) of the last successful heartbeat's start
	started   time.Time
	fenced    atomic.Bool
	stats     struct{ taken, handedOff, released, lost, requested, hbFail atomic.Int64 }
	rng       *rand.Rand // used only by the loop goroutine
}

// NewCoordinator returns a coordinator for store. cfg's zero fields take
// their defaults; an invalid cfg is an error.
func NewCoordinator(store Store, cfg Config, h Handler, log *zap.Logger) (*Coordinator, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := fnv.New64a()
	seed.Write([]byte(cfg.WorkerID))
	return &Coordinator{
		store:     store,
		cfg:       cfg,
		h:         h,
		log:       log.With(zap.String("worker_id", cfg.WorkerID)),
		now:       time.Now,
		kick:      make(chan struct{}, 1),
		held:      map[string]int64{},
		requested: map[string]time.Time{},
		rng:       rand.New(rand.NewPCG(seed.Sum64(), uint64(time.Now().UnixNano()))),
	}, nil
}

// Config returns the effective configuration (defaults applied).
func (c *Coordinator) Config() Config { return c.cfg }

// Run heartbeats and coordinates until ctx ends, then deletes the worker
// item (with a fresh context bounded by the lease duration) and returns.
// It returns an error only if the first heartbeat cannot be written before
// ctx ends. Call BeginStop and release every lease before cancelling ctx for
// a graceful shutdown.
func (c *Coordinator) Run(ctx context.Context) error {
	c.started = c.now()
	if err := c.heartbeat(ctx); err != nil {
		return fmt.Errorf("lease: first heartbeat: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { c.renewLoop(gctx); return nil })
	g.Go(func() error { c.coordinate(gctx); return nil })
	_ = g.Wait()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Duration)
	defer cancel()
	if err := c.store.DeleteWorker(cctx, c.cfg.WorkerID); err != nil {
		c.log.Warn("worker item not deleted; peers will judge it dead after the lease duration", zap.Error(err))
	}
	return nil
}

// BeginStop marks the worker as stopping: it takes and requests nothing
// more, and tells peers at once (an immediate heartbeat) so they stop
// counting it and take the leases it is about to release. It blocks for one
// heartbeat write.
func (c *Coordinator) BeginStop(ctx context.Context) {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if err := c.heartbeat(ctx); err != nil {
		c.log.Warn("stopping heartbeat failed", zap.Error(err))
	}
}

// Kick asks for a coordination pass as soon as possible, e.g. after a shard
// ended and its children may now be taken. It never blocks.
func (c *Coordinator) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Checkpoint writes cp for shardID, fenced on the epoch this worker was
// granted. ErrLost (wrapped) means the lease is gone: stop processing.
func (c *Coordinator) Checkpoint(ctx context.Context, shardID string, cp checkpoint.Checkpoint) error {
	epoch, ok := c.epoch(shardID)
	if !ok {
		return fmt.Errorf("checkpoint %s: %w", shardID, ErrLost)
	}
	err := c.store.Checkpoint(ctx, shardID, c.cfg.WorkerID, epoch, cp)
	if errors.Is(err, ErrLost) {
		c.drop(shardID, epoch)
		c.stats.lost.Add(1)
	}
	return err
}

// Transfer writes the final checkpoint and hands the lease to `to`, or
// releases it when to is "". The lease is no longer held afterwards,
// whatever the outcome.
func (c *Coordinator) Transfer(ctx context.Context, shardID string, cp checkpoint.Checkpoint, to string) error {
	epoch, ok := c.epoch(shardID)
	if !ok {
		return fmt.Errorf("transfer %s: %w", shardID, ErrLost)
	}
	defer c.drop(shardID, epoch)
	if _, err := c.store.Transfer(ctx, shardID, c.cfg.WorkerID, epoch, cp, to); err != nil {
		return err
	}
	if to == "" {
		c.stats.released.Add(1)
	} else {
		c.stats.handedOff.Add(1)
	}
	return nil
}

// Drop forgets a lease the handler stopped processing without a transfer
// (e.g. it failed). The lease stays owned by this worker id in the table
// and is taken back on the next pass, with a new epoch.
func (c *Coordinator) Drop(shardID string) {
	c.mu.Lock()
	delete(c.held, shardID)
	c.mu.Unlock()
}

// Held returns the shards this worker processes and their epochs.
func (c *Coordinator) Held() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.held))
	for k, v := range c.held {
		out[k] = v
	}
	return out
}

// Healthy reports whether the heartbeat is current (the worker has not
// fenced itself).
func (c *Coordinator) Healthy() bool { return !c.fenced.Load() && c.lastRenew.Load() != 0 }

// Stats returns event counts since start.
func (c *Coordinator) Stats() Stats {
	return Stats{
		Taken: c.stats.taken.Load(), HandedOff: c.stats.handedOff.Load(), Released: c.stats.released.Load(),
		Lost: c.stats.lost.Load(), Requested: c.stats.requested.Load(), HeartbeatFailures: c.stats.hbFail.Load(),
	}
}

func (c *Coordinator) epoch(shardID string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.held[shardID]
	return e, ok
}

// drop removes shardID if it is still held at epoch (a newer take of the
// same shard is left alone).
func (c *Coordinator) drop(shardID string, epoch int64) {
	c.mu.Lock()
	if e, ok := c.held[shardID]; ok && e == epoch {
		delete(c.held, shardID)
	}
	c.mu.Unlock()
}

// heartbeat writes one heartbeat. The renewal time recorded is when the
// request was sent, not when it returned: peers can only have seen the new
// counter after the send, so measuring from the send is conservative.
func (c *Coordinator) heartbeat(ctx context.Context) error {
	c.mu.Lock()
	held, stopping := len(c.held), c.stopping
	c.mu.Unlock()
	sent := c.now()
	hctx, cancel := context.WithTimeout(ctx, c.cfg.RenewInterval)
	defer cancel()
	if _, err := c.store.Heartbeat(hctx, c.cfg.WorkerID, held, stopping); err != nil {
		c.stats.hbFail.Add(1)
		return err
	}
	c.lastRenew.Store(sent.Sub(c.started).Nanoseconds() + 1)
	if c.fenced.CompareAndSwap(true, false) {
		c.log.Info("heartbeat recovered")
	}
	return nil
}

// sinceRenew is how long ago the last successful heartbeat was sent.
func (c *Coordinator) sinceRenew() time.Duration {
	last := c.lastRenew.Load()
	if last == 0 {
		return c.now().Sub(c.started)
	}
	return c.now().Sub(c.started) - time.Duration(last-1)
}

// renewLoop heartbeats every RenewInterval; after a failure it retries
// every quarter interval so one lost request does not cost the leases.
func (c *Coordinator) renewLoop(ctx context.Context) {
	wait := c.cfg.RenewInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := c.heartbeat(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("heartbeat failed; retrying", zap.Error(err), zap.Duration("since_renew", c.sinceRenew()))
			wait = c.cfg.RenewInterval / 4
			continue
		}
		wait = c.cfg.RenewInterval
	}
}

// coordinate is the loop: fence check, then a pass, every TakeInterval
// (jittered) or when kicked.
func (c *Coordinator) coordinate(ctx context.Context) {
	live := newLiveness(c.cfg.Duration)
	fenceTick := time.NewTicker(min(c.cfg.SafetyMargin/4, 250*time.Millisecond))
	defer fenceTick.Stop()
	next := time.After(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-fenceTick.C:
			c.checkFence()
			continue
		case <-c.kick:
		case <-next:
		}
		c.checkFence()
		if err := c.pass(ctx, live); err != nil && ctx.Err() == nil {
			c.log.Warn("coordination pass failed", zap.Error(err))
		}
		next = time.After(c.interval())
	}
}

// checkFence stops every shard if the heartbeat is older than Duration -
// SafetyMargin: from then on a peer may soon judge us dead, and we must
// have stopped before it takes over.
func (c *Coordinator) checkFence() {
	since := c.sinceRenew()
	if since < c.cfg.Duration-c.cfg.SafetyMargin {
		return
	}
	c.mu.Lock()
	held := c.held
	c.held = map[string]int64{}
	c.mu.Unlock()
	if c.fenced.CompareAndSwap(false, true) {
		c.log.Error("heartbeat too old; stopped processing every shard", zap.Duration("since_renew", since), zap.Int("shards", len(held)))
	}
	for shard := range held {
		c.stats.lost.Add(1)
		c.h.Lost(shard, fmt.Sprintf("no heartbeat for %s", since.Round(time.Millisecond)))
	}
}

// pass reads the table once and acts on the plan.
func (c *Coordinator) pass(ctx context.Context, live *liveness) error {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	now := c.now()
	live.observe(now, snap)
	c.mu.Lock()
	held := make(map[string]int64, len(c.held))
	for k, v := range c.held {
		held[k] = v
	}
	stopping := c.stopping
	c.mu.Unlock()

	out := plan(planInput{me: c.cfg.WorkerID, now: now, snap: snap, live: live, held: held, stopping: stopping || c.fenced.Load(), rng: c.rng})

	for shard, reason := range out.lost {
		c.drop(shard, held[shard])
		c.stats.lost.Add(1)
		c.log.Warn("lease lost", zap.String("shard_id", shard), zap.String("reason", reason))
		c.h.Lost(shard, reason)
	}
	for shard, to := range out.handoffs {
		c.log.Info("handoff requested", zap.String("shard_id", shard), zap.String("to", to))
		c.h.HandoffRequested(shard, to)
	}
	for _, shard := range out.cancels {
		l := findLease(snap, shard)
		if err := c.store.CancelHandoff(ctx, shard, l.HandoffTo); err != nil {
			return err
		}
	}
	for _, t := range out.takes {
		l, err := c.store.Take(ctx, t.shardID, c.cfg.WorkerID, t.epoch)
		if errors.Is(err, ErrConflict) {
			continue // a peer was faster; the next pass sees the new owner
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.held[l.ShardID] = l.Epoch
		delete(c.requested, l.ShardID)
		c.mu.Unlock()
		c.stats.taken.Add(1)
		c.log.Info("lease taken", zap.String("shard_id", l.ShardID), zap.Int64("epoch", l.Epoch), zap.String("reason", t.reason))
		c.h.Acquired(l)
	}
	return c.balance(ctx, now, out.requests)
}

// balance sends new handoff requests and cancels ours that timed out. A
// granted request shows up as a lease owned by this worker id but not held,
// which the next pass takes (with a new epoch) and starts.
func (c *Coordinator) balance(ctx context.Context, now time.Time, reqs []request) error {
	for _, r := range reqs {
		if err := c.store.RequestHandoff(ctx, r.shardID, r.owner, r.epoch, c.cfg.WorkerID); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return err
		}
		c.mu.Lock()
		c.requested[r.shardID] = now
		c.mu.Unlock()
		c.stats.requested.Add(1)
		c.log.Info("handoff request sent", zap.String("shard_id", r.shardID), zap.String("owner", r.owner))
	}
	c.mu.Lock()
	var expired []string
	for shard, t := range c.requested {
		if now.Sub(t) > c.cfg.HandoffTimeout {
			expired = append(expired, shard)
			delete(c.requested, shard)
		}
	}
	c.mu.Unlock()
	for _, shard := range expired {
		if err := c.store.CancelHandoff(ctx, shard, c.cfg.WorkerID); err != nil {
			return err
		}
	}
	return nil
}

// interval is the wait before the next pass: short while a handoff we
// asked for is pending, so a granted lease starts promptly.
func (c *Coordinator) interval() time.Duration {
	c.mu.Lock()
	pending := len(c.requested)
	c.mu.Unlock()
	d := c.cfg.TakeInterval
	if pending > 0 {
		d /= 5
	}
	jitter := time.Duration(c.rng.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

func findLease(snap Snapshot, shard string) Lease {
	for _, l := range snap.Leases {
		if l.ShardID == shard {
			return l
		}
	}
	return Lease{}
}
