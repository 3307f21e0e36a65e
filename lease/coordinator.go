package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/internal/grid"
)

// Handler is told about new grants. Its methods are called from the
// coordinator's goroutine and must return quickly (start or signal a
// consumer, do not process records); Acquired is called with the
// coordinator's lock held, so it must not call the coordinator.
type Handler interface {
	// Acquired: start processing g's shard from g.Lease().Checkpoint, under
	// g.Context. Checkpoints go through Coordinator.Checkpoint with g. When
	// g ends (g.Done) stop at once and do not checkpoint.
	Acquired(g *Grant)
	// HandoffRequested: another worker asked for g's lease and this worker
	// agreed. Finish the in-flight batch, make it durable, then call
	// Coordinator.Transfer with g, the final checkpoint and to. Called once
	// per grant and requester.
	HandoffRequested(g *Grant, to string)
}

// Stats counts the coordinator's lease events since start.
type Stats struct {
	Taken, HandedOff, Released, Lost, Fenced, Requested, HeartbeatFailures int64
	// DeclaredDead counts peers this worker declared dead; Reincarnations
	// counts times this worker was declared dead itself and rejoined.
	DeclaredDead, Reincarnations int64
	// Scans and Polls count whole-table reads and cheap polls. Turns
	// counts this worker's turns of the periodic safety scan (each is two
	// scans, Duration apart); Unannounced the turns that found a change
	// nobody had announced and bumped the generation for it.
	Scans, Polls, Turns, Unannounced int64
}

// Coordinator runs one worker's side of the lease protocol: a heartbeat
// loop, a fence timer that stops every shard when the heartbeat gets too
// old, and a coordination loop that takes, balances, declares dead peers
// and notices lost leases. Create with NewCoordinator, start with Run. Its
// methods are safe for concurrent use.
type Coordinator struct {
	store Store
	cfg   Config
	h     Handler
	log   *zap.Logger
	base  time.Time // monotonic origin of the fence arithmetic; set once

	kick chan struct{} // capacity 1: "run a pass soon"

	// fenceAt is the fence time in nanoseconds after base; 0 means fenced
	// (no successful heartbeat of the current incarnation yet).
	fenceAt    atomic.Int64
	fenceMu    sync.Mutex  // guards fenceTimer
	fenceTimer *time.Timer // fires at the fence time; nil outside Run

	mu        sync.Mutex
	id        string               // guarded by mu: current incarnation's identity
	joined    bool                 // guarded by mu: the identity's item was created (its first heartbeat succeeded)
	grants    map[string]*Grant    // guarded by mu: shard -> the grant being processed
	requested map[string]time.Time // guarded by mu: our pending handoff requests, by shard
	stopping  bool                 // guarded by mu
	announce  bool                 // guarded by mu: bump the generation on the next pass
	dropped   map[string]dropped   // guarded by mu: own leases not to take back before a time
	hbErr     error                // guarded by mu: heartbeats refused for good (access denied), nil when none
	passErr   error                // guarded by mu: passes refused for good, nil when none
	grid      grid.Grid            // guarded by mu: the instants regular passes fall on (see AlignPasses); Every 0: none

	stats struct {
		taken, handedOff, released, lost, fenced, requested, hbFail, declared, reincarnated, scans, polls, turns, unannounced atomic.Int64
	}
	rng *mrand.Rand // used only by the loop goroutine
}

// NewCoordinator returns a coordinator for store. cfg's zero fields take
// their defaults; an invalid cfg is an error, and so is a nil store,
// handler or logger (a DynamoStore without a client or table too): every
// mistake is reported here, none later as a panic.
func NewCoordinator(store Store, cfg Config, h Handler, log *zap.Logger) (*Coordinator, error) {
	err := cfg.Validate()
	if err2 := checkStore(store); err2 != nil {
		err = errors.Join(err, err2)
	}
	if h == nil {
		err = errors.Join(err, errors.New("lease: the coordinator's handler is nil"))
	}
	if log == nil {
		err = errors.Join(err, errors.New("lease: the coordinator's logger is nil"))
	}
	if err != nil {
		return nil, err
	}
	cfg.defaults()
	seed := fnv.New64a()
	seed.Write([]byte(cfg.WorkerID))
	c := &Coordinator{
		store:     store,
		cfg:       cfg,
		h:         h,
		base:      time.Now(),
		kick:      make(chan struct{}, 1),
		grants:    map[string]*Grant{},
		requested: map[string]time.Time{},
		dropped:   map[string]dropped{},
		rng:       mrand.New(mrand.NewPCG(seed.Sum64(), uint64(time.Now().UnixNano()))),
	}
	c.id = newIdentity(cfg.WorkerID)
	c.log = log.With(zap.String("worker_id", cfg.WorkerID))
	return c, nil
}

// checkStore reports a store that cannot be used: nil, or a DynamoStore
// without a client or a table name.
func checkStore(store Store) error {
	switch s := store.(type) {
	case nil:
		return errors.New("lease: the lease store is nil")
	case *DynamoStore:
		if s == nil {
			return errors.New("lease: the lease store is nil")
		}
		return s.check()
	}
	return nil
}

// newIdentity returns "<id>~<8 random hex digits>".
func newIdentity(workerID string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return workerID + incarnationSep + hex.EncodeToString(b[:])
}

// Config returns the effective configuration (defaults applied).
func (c *Coordinator) Config() Config { return c.cfg }

// Identity returns the current incarnation's identity, the owner name
// this process writes into the table. It changes if the worker is
// declared dead and rejoins.
func (c *Coordinator) Identity() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// Run writes the first heartbeat (retrying until it succeeds or ctx ends),
// then heartbeats, fences and coordinates until ctx ends, and returns.
// Call Leave afterwards to remove the worker item. Run returns an error if
// no heartbeat could be written before ctx ended or the table refuses for
// good (access denied, say).
func (c *Coordinator) Run(ctx context.Context) error {
	if err := c.firstHeartbeat(ctx); err != nil {
		return err
	}
	c.fenceMu.Lock()
	c.fenceTimer = time.AfterFunc(c.untilFence(), c.onFenceTimer)
	c.fenceMu.Unlock()
	defer func() {
		c.fenceMu.Lock()
		c.fenceTimer.Stop()
		c.fenceTimer = nil
		c.fenceMu.Unlock()
		// Without the fence timer nothing would stop a grant that is still
		// processing: end them all.
		c.endAll(fmt.Errorf("%w: coordinator stopped", ErrFenced))
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { c.renewLoop(gctx); return nil })
	g.Go(func() error { c.coordinate(gctx); return nil })
	return g.Wait()
}

// firstHeartbeat retries the first heartbeat with backoff.
func (c *Coordinator) firstHeartbeat(ctx context.Context) error {
	b := backoff.New(backoff.Policy{Min: c.cfg.RenewInterval / 8, Max: c.cfg.RenewInterval})
	for {
		err := c.heartbeat(ctx)
		if err == nil {
			return nil
		}
		if awserr.Permanent(err) || ctx.Err() != nil {
			return fmt.Errorf("lease: first heartbeat: %w", err)
		}
		wait := b.Next()
		c.log.Warn("first heartbeat failed; retrying", zap.Error(err), zap.Duration("wait", wait))
		if backoff.Sleep(ctx, wait) != nil {
			return fmt.Errorf("lease: first heartbeat: %w", err)
		}
	}
}

// Stop marks the worker as stopping, at once and without I/O: from its
// return on, no grant reaches the handler (a lease taken meanwhile is
// released again), and nothing more is taken or requested.
func (c *Coordinator) Stop() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
}

// BeginStop calls Stop and tells peers at once (a heartbeat and an
// announcement, bounded by ctx) so they stop counting this worker and take
// the leases it is about to release.
func (c *Coordinator) BeginStop(ctx context.Context) {
	c.Stop()
	if err := c.heartbeat(ctx); err != nil {
		c.log.Warn("stopping heartbeat failed", zap.Error(err))
	}
	c.Kick()
}

// Leave deletes the worker item after a clean shutdown, bounded by ctx and
// CallTimeout. Call it after Run returned and every lease was released.
func (c *Coordinator) Leave(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	if err := c.store.DeleteWorker(cctx, c.Identity()); err != nil {
		c.log.Warn("worker item not deleted; peers will declare it dead after the lease duration", zap.Error(err))
	}
	if _, err := c.store.Bump(cctx); err != nil {
		c.log.Debug("leave not announced", zap.Error(err))
	}
}

// AlignPasses puts the coordinator's regular passes on the instants
// origin + n·every (every integer n), so that a process with other
// periodic work on those instants wakes once for both instead of once
// for each: a worker passes its poll grid (worker.Worker.PollGrid), on
// which it polls its caught-up shards. Call it before Run.
//
// Only the regular wait moves: the pass after one that succeeded with no
// handoff requested is at the instant nearest to TakeInterval after it
// ended, instead of TakeInterval ±10% after it. So a regular wait is at most every/2 longer than
// TakeInterval, and passes that take less than every/2 keep one instant
// each, none skipped. The grid's phase stands in for the jitter: give
// each process a random origin, or processes started together would all
// read the table in the same instant. The first pass (one interval after
// Run began, so that workers started together have all heartbeated),
// kicks, the short wait while a handoff this worker requested is
// pending, and the backoff after failed passes are as without a grid; heartbeats and the fence keep their own
// timers. An every of 0 turns alignment off, and so does one longer than
// TakeInterval: waiting for such a grid would slow how soon the
// coordinator sees a dead peer or a released lease.
func (c *Coordinator) AlignPasses(origin time.Time, every time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grid = grid.Grid{}
	if every > 0 && every <= c.cfg.TakeInterval {
		c.grid = grid.Grid{Origin: origin, Every: every}
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

// Announce tells peers, on the next pass, that the table changed in a way
// they should look at (new leases were created), and kicks a pass. It
// never blocks.
func (c *Coordinator) Announce() {
	c.announceChange()
	c.Kick()
}

func (c *Coordinator) announceChange() {
	c.mu.Lock()
	c.announce = true
	c.mu.Unlock()
}

// current reports whether g is the grant this worker processes its shard
// under.
func (c *Coordinator) current(g *Grant) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grants[g.lease.ShardID] == g && !g.ended()
}

// Checkpoint writes cp for g's shard, fenced on the epoch g was granted,
// bounded by CallTimeout. An error wrapping ErrLost (or g.Err()) means the
// grant is over: stop processing.
func (c *Coordinator) Checkpoint(ctx context.Context, g *Grant, cp checkpoint.Checkpoint) error {
	if !c.current(g) {
		return fmt.Errorf("checkpoint %s: %w", g.lease.ShardID, c.endedErr(g))
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	err := c.store.Checkpoint(cctx, g.lease.ShardID, g.owner, g.lease.Epoch, cp)
	if errors.Is(err, ErrLost) {
		c.lose(g, err)
	}
	return err
}

// Transfer writes the final checkpoint and hands g's lease to `to` (a
// worker identity that requested it), or releases it when to is "",
// bounded by ctx and CallTimeout. The grant ends unless the error wraps
// ErrConflict: to withdrew its request, the lease is still this worker's
// and processing may go on.
func (c *Coordinator) Transfer(ctx context.Context, g *Grant, cp checkpoint.Checkpoint, to string) error {
	if !c.current(g) {
		return fmt.Errorf("transfer %s: %w", g.lease.ShardID, c.endedErr(g))
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	_, err := c.store.Transfer(cctx, g.lease.ShardID, g.owner, g.lease.Epoch, cp, to)
	switch {
	case err == nil:
		c.forget(g, errTransferred)
		if to == "" {
			c.stats.released.Add(1)
			c.announceChange() // peers should take it
			c.Kick()
		} else {
			c.stats.handedOff.Add(1)
		}
	case errors.Is(err, ErrConflict):
		g.mu.Lock()
		g.signaled = "" // a new request from the same worker is signalled again
		g.mu.Unlock()
	case errors.Is(err, ErrLost):
		c.lose(g, err)
	default:
		// The write may or may not have landed: stop processing; the
		// next pass takes the lease back if it is still ours.
		c.forget(g, errTransferred)
	}
	return err
}

// Drop ends g because its consumer cannot go on (the processor or the
// shard iterator failed). The lease stays this worker's in the table and
// is taken back on a later pass, with a new epoch and a fresh consumer,
// after a wait that doubles with each drop of the same shard (from one
// take interval up to a minute), so a failure that persists is not
// retried in a hot loop.
func (c *Coordinator) Drop(g *Grant) {
	shard := g.lease.ShardID
	c.mu.Lock()
	d := c.dropped[shard]
	if time.Since(d.until) > 5*time.Minute {
		d.n = 0
	}
	d.until = time.Now().Add(min(c.cfg.TakeInterval<<d.n, time.Minute))
	d.n = min(d.n+1, 16)
	c.dropped[shard] = d
	c.mu.Unlock()
	c.forget(g, errTransferred)
}

// dropped is the back-off of an own lease whose consumer failed.
type dropped struct {
	until time.Time
	n     int
}

// backingOff returns the own leases not to take back yet. c.mu is held.
func (c *Coordinator) backingOff() map[string]bool {
	now := time.Now()
	out := map[string]bool{}
	for shard, d := range c.dropped {
		switch {
		case now.Before(d.until):
			out[shard] = true
		case now.Sub(d.until) > 5*time.Minute:
			delete(c.dropped, shard)
		}
	}
	return out
}

func (c *Coordinator) endedErr(g *Grant) error {
	if err := g.Err(); err != nil {
		return err
	}
	return ErrLost
}

// forget removes g if it is the current grant of its shard, and ends it.
func (c *Coordinator) forget(g *Grant, why error) bool {
	c.mu.Lock()
	if c.grants[g.lease.ShardID] == g {
		delete(c.grants, g.lease.ShardID)
	}
	c.mu.Unlock()
	return g.end(why)
}

// lose ends g as lost.
func (c *Coordinator) lose(g *Grant, why error) {
	if c.forget(g, why) {
		c.stats.lost.Add(1)
		c.log.Warn("lease lost", zap.String("shard_id", g.lease.ShardID), zap.Error(why))
	}
}

// Held returns the shards this worker processes and their epochs.
func (c *Coordinator) Held() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.grants))
	for k, g := range c.grants {
		out[k] = g.lease.Epoch
	}
	return out
}

// Health reports why the worker is not processing normally, or nil: the
// fence is up (the heartbeat is not current), or the lease table refuses
// with a permanent error (access denied, say).
func (c *Coordinator) Health() error {
	if !time.Now().Before(c.fenceTime()) {
		return fmt.Errorf("%w: not processing any shard", ErrFenced)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hbErr != nil {
		return c.hbErr
	}
	return c.passErr
}

// Stats returns event counts since start.
func (c *Coordinator) Stats() Stats {
	s := &c.stats
	return Stats{
		Taken: s.taken.Load(), HandedOff: s.handedOff.Load(), Released: s.released.Load(), Lost: s.lost.Load(),
		Fenced: s.fenced.Load(), Requested: s.requested.Load(), HeartbeatFailures: s.hbFail.Load(),
		DeclaredDead: s.declared.Load(), Reincarnations: s.reincarnated.Load(), Scans: s.scans.Load(), Polls: s.polls.Load(),
		Turns: s.turns.Load(), Unannounced: s.unannounced.Load(),
	}
}

// call bounds one lease-table call by CallTimeout.
func (c *Coordinator) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}
