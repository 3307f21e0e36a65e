package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
)

// watchNeighbours is how many ring successors each worker watches between
// scans. Two, so that two workers dying together are still noticed.
const watchNeighbours = 2

// maxPolledRequests is how many pending requests a poll follows: a poll is
// one BatchGetItem of at most 100 keys (the generation, the worker's own
// item and its neighbours take the rest). A worker with more pending
// scans instead.
const maxPolledRequests = 100 - 2 - watchNeighbours

// loopState is what the coordination loop remembers between passes. Only
// the loop goroutine touches it.
type loopState struct {
	live       *liveness
	gen        int64    // fleet generation at the last scan; -1 before the first
	scanUnits  float64  // what the last scan cost
	fleetBytes int      // the fleet partition's size at the last scan or query poll (PollUnits)
	rescan     bool     // the last read looked stale or a write conflicted: scan next pass
	ring       []string // identities watched between scans
	inbox      int64    // our own item's inbox at the last scan
	failures   int      // consecutive failed passes
	// look is when to scan again although nothing was announced, zero
	// when not needed: the last scan showed the fleet unbalanced but gave
	// this worker nothing to do yet (others below floor must ask first,
	// or a promise it counted may be refused). Handoffs are not
	// announced, so only a look shows when it can act. lookWait is the
	// wait that set it: it doubles, up to ScanInterval, while looks show
	// the same spread, and starts again from a few take intervals when
	// the spread changed; lookSeen is the spread the last look showed.
	look     time.Time
	lookWait time.Duration
	lookSeen spread
	// The periodic safety scan, taken in turns (see scheduleTurn): turn is
	// when this worker's next one is due, followUp when the second look
	// of the last one is due (zero when none), turnJitter this worker's
	// fixed offset inside its slot. baseGen and baseView are the
	// generation and the fleet view (viewDigest) of the first scan that
	// showed that generation: what the last announcement told everyone.
	turn       time.Time
	followUp   time.Time
	turnJitter time.Duration
	baseGen    int64
	baseView   uint64
}

// coordinate is the loop: a pass every TakeInterval (jittered, or on the
// grid of AlignPasses; backing off after failures) or when kicked. The
// first pass waits one interval (jittered, grid or not): workers started
// together have all heartbeated by then, so each sees the whole fleet and
// takes only its share of the unowned leases, instead of the first to
// look taking everything and handing most of it over again.
func (c *Coordinator) coordinate(ctx context.Context) {
	st := &loopState{live: newLiveness(c.cfg.Duration), gen: -1, baseGen: -1}
	first, _ := c.interval(0)
	timer := time.NewTimer(first)
	defer timer.Stop()
	st.turnJitter = time.Duration(c.rng.Int64N(int64(c.cfg.ScanInterval/4) + 1))
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-timer.C:
		}
		err := c.pass(ctx, st)
		switch {
		case err == nil:
			st.failures = 0
			c.setPassHealth(nil)
		case ctx.Err() != nil:
			return
		default:
			st.failures++
			st.rescan = true
			if awserr.Permanent(err) {
				c.setPassHealth(fmt.Errorf("lease table refuses coordination: %w", err))
			}
			c.log.Warn("coordination pass failed", zap.Error(err), zap.Int("failures", st.failures))
		}
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(c.wait(st.failures, time.Now()))
	}
}

func (c *Coordinator) setPassHealth(err error) {
	c.mu.Lock()
	c.passErr = err
	c.mu.Unlock()
}

// interval is the wait before the next pass: short while a handoff we
// asked for is pending, so a granted lease starts promptly; doubling after
// each failed pass up to 8 intervals, so a failing table is not hammered.
// regular reports the plain wait (no failure, nothing pending), the one
// that a pass grid may move.
func (c *Coordinator) interval(failures int) (d time.Duration, regular bool) {
	c.mu.Lock()
	pending := len(c.requested)
	c.mu.Unlock()
	p := backoff.Policy{Min: c.cfg.TakeInterval, Max: 8 * c.cfg.TakeInterval, Jitter: backoff.Tenth, Rand: c.rng.Int64N}
	if failures == 0 && pending > 0 {
		p.Min /= 5
	}
	return p.Delay(failures + 1), failures == 0 && pending == 0
}

// wait is the wait, from now (the end of a pass), before the next pass:
// interval's, but a regular one on the pass grid when there is one (see
// AlignPasses).
func (c *Coordinator) wait(failures int, now time.Time) time.Duration {
	d, regular := c.interval(failures)
	c.mu.Lock()
	g := c.grid
	c.mu.Unlock()
	if !regular || g.Every == 0 {
		return d
	}
	return g.Nearest(now.Add(c.cfg.TakeInterval)).Sub(now)
}

// pass looks at the table once and acts. Between changes it only polls:
// the fleet generation, the heartbeats of the ring neighbours it watches
// and the leases it asked for. It scans the whole table (eventually
// consistent) when the generation moved, when a previous read or write
// showed its view stale, when its last plan asked it to look again (see
// scheduleScan), every ScanInterval, and on every pass when the table is
// so small that a scan costs no more than a poll.
func (c *Coordinator) pass(ctx context.Context, st *loopState) error {
	c.mu.Lock()
	me, stopping, announce := c.id, c.stopping, c.announce
	c.announce = false
	reqShards := make([]string, 0, len(c.requested))
	for s := range c.requested {
		reqShards = append(reqShards, s)
	}
	c.mu.Unlock()
	var errs []error
	if announce {
		if err := c.bump(ctx); err != nil {
			c.announceChange() // try again next pass
			errs = append(errs, err)
		}
	}

	pollUnits := PollUnits(st.fleetBytes, append([]string{me}, st.ring...), len(reqShards))
	now := time.Now()
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	lookNow := due(st.look)
	turn := due(st.turn) || due(st.followUp)
	scan := st.gen < 0 || st.rescan || stopping || lookNow || turn || len(reqShards) > maxPolledRequests ||
		st.scanUnits <= pollUnits
	if !scan {
		pctx, cancel := c.call(ctx)
		sent := time.Now()
		p, err := c.store.Poll(pctx, append([]string{me}, st.ring...), reqShards)
		cancel()
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		c.stats.polls.Add(1)
		returned := time.Now()
		if p.FleetBytes > 0 {
			st.fleetBytes = p.FleetBytes
		}
		for _, w := range p.Workers {
			if w.ID == me && w.Inbox != st.inbox {
				scan = true // a peer asked us for a lease
			}
		}
		if p.Generation != st.gen {
			scan = true
		}
		if !scan {
			errs = append(errs, c.afterPoll(ctx, st, me, p, sent, returned))
		}
	}
	if scan {
		errs = append(errs, c.afterScan(ctx, st, me, stopping, turn))
	}
	if c.takeAnnouncement() {
		if err := c.bump(ctx); err != nil {
			c.announceChange()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// takeAnnouncement clears and returns the announce flag.
func (c *Coordinator) takeAnnouncement() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.announce
	c.announce = false
	return a
}

func (c *Coordinator) bump(ctx context.Context) error {
	bctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.store.Bump(bctx)
	return err
}

// afterPoll acts on a poll that showed no change: declare dead a watched
// neighbour whose heartbeat stopped, take leases handed to us, forget
// requests that were refused.
func (c *Coordinator) afterPoll(ctx context.Context, st *loopState, me string, p Polled, sent, returned time.Time) error {
	found := map[string]bool{}
	for _, w := range p.Workers {
		if w.ID == me {
			continue
		}
		found[w.ID] = true
		if w.Dead {
			st.rescan = true // someone else declared it: look at the table
			continue
		}
		st.live.observe(w.ID, w.Heartbeat, sent, returned)
	}
	var errs []error
	for _, id := range st.ring {
		if !found[id] {
			st.rescan = true // it left; the ring must change
			continue
		}
		if exp, counter := st.live.expired(id); exp {
			if _, err := c.declareDead(ctx, st, id, counter); err != nil {
				errs = append(errs, err)
			}
		}
	}
	byShard := map[string]Lease{}
	for _, l := range p.Leases {
		byShard[l.ShardID] = l
	}
	var takes []take
	pending := c.pendingShards()
	for _, shard := range pending {
		l, ok := byShard[shard]
		if ok && l.Owner == me {
			takes = append(takes, take{shard, l.Epoch, takeOwn, "", l.UpdatedAt})
		}
	}
	errs = append(errs, c.take(ctx, st, me, takes, nil))
	errs = append(errs, c.expireRequests(ctx, byShard, false))
	if len(pending) > 0 && len(c.pendingShards()) == 0 {
		// Every request was answered: handed over, refused or withdrawn.
		// Plan again from a fresh read, at once: what this worker counted
		// as coming may not have come, and nothing else would make it
		// look before the scan interval.
		st.rescan = true
		c.Kick()
	}
	return errors.Join(errs...)
}

// afterScan reads the whole table and runs the plan. turn: this scan is
// (also) this worker's periodic safety scan or its second look.
func (c *Coordinator) afterScan(ctx context.Context, st *loopState, me string, stopping, turn bool) error {
	sctx, cancel := context.WithTimeout(ctx, 5*c.cfg.CallTimeout)
	sent := time.Now()
	snap, err := c.store.Snapshot(sctx)
	cancel()
	if err != nil {
		return err
	}
	returned := time.Now()
	c.stats.scans.Add(1)
	stale := snap.Generation < st.gen
	if stale {
		st.rescan = true // an older copy than one we saw
	} else {
		st.gen, st.rescan = snap.Generation, false
	}
	st.scanUnits, st.fleetBytes = snap.ReadUnits, snap.FleetBytes

	dead := map[string]bool{}
	present := map[string]Worker{}
	for _, w := range snap.Workers {
		present[w.ID] = w
		if w.ID == me {
			st.inbox = w.Inbox
		}
		if w.Dead {
			dead[w.ID] = true
			st.live.forget(w.ID)
			continue
		}
		if w.ID != me {
			st.live.observe(w.ID, w.Heartbeat, sent, returned)
		}
	}
	owners := map[string]bool{}
	for _, l := range snap.Leases {
		for _, id := range []string{l.Owner, l.HandoffTo} {
			if id == "" || id == me {
				continue
			}
			owners[id] = true
			if _, ok := present[id]; !ok {
				st.live.observe(id, -1, sent, returned) // an owner with no item: judged by the same rule
			}
		}
	}
	for id := range st.live.seen {
		if _, ok := present[id]; !ok && !owners[id] {
			st.live.forget(id)
		}
	}

	var errs []error
	// Declare dead every peer (or item-less owner) whose counter stood
	// still for the lease duration.
	ids := make([]string, 0, len(st.live.seen))
	for id := range st.live.seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if exp, counter := st.live.expired(id); exp && !dead[id] {
			declared, err := c.declareDead(ctx, st, id, counter)
			if err != nil {
				errs = append(errs, err)
			}
			// Only a declaration that was written makes the owner dead
			// here. One that failed its condition means the worker
			// renewed, its item exists after all, or a peer was first:
			// the next scan shows which (a peer's mark is in the item).
			if declared {
				dead[id] = true
			}
		}
	}

	live := map[string]bool{}
	var ring []string
	for id, w := range present {
		if id == me || w.Dead {
			continue
		}
		ring = append(ring, id)
		if exp, _ := st.live.expired(id); !w.Stopping && !exp {
			live[id] = true
		}
	}
	st.ring = successors(me, ring, watchNeighbours)

	c.mu.Lock()
	held := make(map[string]int64, len(c.grants))
	for s, g := range c.grants {
		held[s] = g.lease.Epoch
	}
	incoming := map[string]bool{}
	for s := range c.requested {
		incoming[s] = true
	}
	noTake := c.backingOff()
	c.mu.Unlock()

	out := plan(planInput{me: me, snap: snap, held: held, dead: dead, live: live, incoming: incoming, noTake: noTake, stopping: stopping, rng: c.rng})
	defer func() { c.scheduleScan(st, out, sent) }()
	// A copy older than one already seen does not count as the turn: the
	// turn stays due and the next pass scans again.
	c.checkAnnounced(st, snap, out, turn && !stopping && !stale)
	c.scheduleTurn(st, me, live, turn && !stale, returned)
	for shard, reason := range out.lost {
		if g := c.grant(shard); g != nil {
			c.lose(g, fmt.Errorf("%w: %s", ErrLost, reason))
		}
	}
	for _, shard := range out.confirm {
		errs = append(errs, c.confirm(ctx, me, shard))
	}
	for shard, to := range out.handoffs {
		if g := c.grant(shard); g != nil && g.signal(to) {
			c.log.Info("handoff agreed", zap.String("shard_id", shard), zap.String("to", to))
			c.h.HandoffRequested(g, to)
		}
	}
	for _, r := range out.refusals {
		cctx, cancel := c.call(ctx)
		err := c.store.CancelHandoff(cctx, r.shardID, r.requester)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Not announced: the requester follows its request with polls
		// and plans again once it is gone (see afterPoll); peers that
		// counted the promise look again while the spread they saw is off
		// (see scheduleScan).
		c.log.Info("handoff request refused", zap.String("shard_id", r.shardID), zap.String("requester", r.requester), zap.Stringer("reason", r.reason))
	}
	// Look up only what the takes and pending requests need: parents of
	// first takes (to delete them) and the leases asked for.
	want := map[string]bool{}
	for _, s := range c.pendingShards() {
		want[s] = true
	}
	firstTakes := map[string]bool{}
	for _, t := range out.takes {
		if t.epoch == 0 {
			firstTakes[t.shardID] = true
		}
	}
	if len(firstTakes) > 0 {
		for _, l := range snap.Leases {
			if firstTakes[l.ShardID] {
				for _, p := range l.Parents {
					want[p] = true
				}
			}
		}
	}
	byShard := make(map[string]Lease, len(want))
	for _, l := range snap.Leases {
		if want[l.ShardID] {
			byShard[l.ShardID] = l
		}
	}
	errs = append(errs, c.take(ctx, st, me, out.takes, byShard))
	errs = append(errs, c.request(ctx, st, me, out.requests))
	errs = append(errs, c.expireRequests(ctx, byShard, true))
	errs = append(errs, c.sweep(ctx, me, live, snap))
	return errors.Join(errs...)
}

// The periodic safety scan. Between announcements a worker only polls the
// generation, its own item and two neighbours; a full scan every
// ScanInterval by *every* worker used to catch what polls cannot see, and
// cost W scans of S leases per interval (at 10,000 leases and 200 workers
// about half the reads at rest). The workers now take turns: with n live
// workers, each scans once every n × ScanInterval, in a slot of its own
// (its rank among them, on the wall clock), so the fleet does about one
// periodic scan per ScanInterval whatever its size. A turn is two scans,
// Duration apart, and the turn is what the rest of the fleet relies on:
//
//   - A change whose announcement was lost (its writer crashed before the
//     bump, or the bump kept failing): leases created, released, ended,
//     or owned by a worker declared dead; or a membership change nobody
//     announces (a worker joined or began stopping: rings must change).
//     The turn compares the table with what the generation it shows
//     promised (baseView, from this worker's first scan at it) and looks
//     for processable leases nobody live owns that it does not take
//     itself; either makes it bump the generation, so every worker scans
//     within a take interval (checkAnnounced).
//   - A worker nobody watches (rings built from views that disagree) or a
//     lease owner with no item: the second look, Duration after the
//     first, declares dead any of them whose counter stood still between
//     the two, as every worker's periodic scans used to.
//
// Takes, handoffs, requests and deleted ended leases are not announced by
// design and do not count as changes: the parties to them follow them
// (requester polls, owner's inbox, look-again), and counting them would
// make the turn after every takeover bump again.

// checkAnnounced keeps the baseline and, when check (a turn), bumps the
// generation if the scan shows a change the generation did not announce.
func (c *Coordinator) checkAnnounced(st *loopState, snap Snapshot, out planOutput, check bool) {
	switch {
	case snap.Generation < st.baseGen:
		return // an older copy than the baseline
	case snap.Generation != st.baseGen:
		// A new announcement: every worker scans after it, so this
		// view is what they know. (A turn that is first to see it has
		// nothing to add: they are all scanning.)
		st.baseGen, st.baseView = snap.Generation, viewDigest(snap)
		return
	case !check:
		return
	}
	if view := viewDigest(snap); view != st.baseView || out.untaken > 0 {
		c.stats.unannounced.Add(1)
		c.log.Info("periodic scan found a change that was not announced; announcing it",
			zap.Int64("generation", snap.Generation), zap.Bool("membership_or_leases_changed", view != st.baseView),
			zap.Int("leases_nobody_takes", out.untaken))
		c.announceChange()
	}
}

// viewDigest sums a hash of what every worker must know about the table
// and is told by a generation bump: the live (not dead) workers and
// whether they are stopping, and the leases not ended. The sum does not
// depend on the order of the scan.
func viewDigest(snap Snapshot) uint64 {
	var sum uint64
	h := fnv.New64a()
	add := func(kind byte, id string, flag bool) {
		h.Reset()
		b := []byte{kind, 0}
		if flag {
			b[1] = 1
		}
		h.Write(b)
		h.Write([]byte(id))
		sum += h.Sum64()
	}
	for _, w := range snap.Workers {
		if !w.Dead {
			add('w', w.ID, w.Stopping)
		}
	}
	for _, l := range snap.Leases {
		if !l.Ended() {
			add('l', l.ShardID, false)
		}
	}
	return sum
}

// scheduleTurn sets, after a scan, when this worker's next turn of the
// periodic safety scan is due, and its second look. With n live workers
// (itself included) and this worker at rank r among them, its turns fall
// on the wall clock at r × ScanInterval (plus a fixed jitter of at most a
// quarter interval) modulo n × ScanInterval: while the workers agree on
// who is live, consecutive turns of the fleet are about one ScanInterval
// apart. Wall clocks only place the turns — a skewed clock moves a turn,
// never safety — and a turn once scheduled is never put off, so each
// worker still has one at least every n × ScanInterval whatever its view.
func (c *Coordinator) scheduleTurn(st *loopState, me string, live map[string]bool, turn bool, returned time.Time) {
	ids := make([]string, 0, len(live)+1)
	for id := range live {
		ids = append(ids, id)
	}
	ids = append(ids, me)
	sort.Strings(ids)
	r := sort.SearchStrings(ids, me)
	every := c.cfg.ScanInterval
	period := int64(len(ids)) * int64(every)
	now := time.Now()
	phase := int64(r)*int64(every) + int64(st.turnJitter)
	next := now.Add(time.Duration(((phase-now.UnixNano())%period + period) % period))
	switch {
	case turn && !st.turn.IsZero() && !now.Before(st.turn):
		// This was the turn: the second look follows Duration after this
		// answer, so a counter that stands still in between has stood
		// still for Duration (liveness.expired).
		st.turn, st.followUp = next, returned.Add(c.cfg.Duration)
		c.stats.turns.Add(1)
		return
	case turn:
		st.followUp = time.Time{} // this was the second look
	}
	if st.turn.IsZero() || next.Before(st.turn) {
		st.turn = next
	}
}

// successors returns the n identities after me in sorted order, wrapping.
func successors(me string, others []string, n int) []string {
	sort.Strings(others)
	if len(others) <= n {
		return others
	}
	i := sort.SearchStrings(others, me)
	out := make([]string, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, others[(i+k)%len(others)])
	}
	return out
}

// declareDead marks id dead if its counter is still counter, and
// announces it; it reports whether it did. A conflict means it came back,
// its item exists after all, or someone was first: not declared, and the
// next pass scans to see which.
func (c *Coordinator) declareDead(ctx context.Context, st *loopState, id string, counter int64) (bool, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	err := c.store.MarkDead(cctx, id, counter)
	switch {
	case err == nil:
		c.stats.declared.Add(1)
		c.log.Warn("worker declared dead: heartbeat unchanged for the lease duration", zap.String("peer", id), zap.Int64("counter", counter))
		st.live.forget(id)
		c.announceChange()
		return true, nil
	case errors.Is(err, ErrConflict):
		st.rescan = true
		st.live.forget(id) // start watching it afresh
		return false, nil
	}
	return false, err
}

func (c *Coordinator) grant(shard string) *Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grants[shard]
}

func (c *Coordinator) pendingShards() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.requested))
	for s := range c.requested {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// confirm checks, with a strong read, a held lease an eventually
// consistent read did not show.
func (c *Coordinator) confirm(ctx context.Context, me, shard string) error {
	g := c.grant(shard)
	if g == nil {
		return nil
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	l, err := c.store.Get(cctx, shard)
	switch {
	case errors.Is(err, ErrNotFound):
		c.lose(g, fmt.Errorf("%w: lease deleted", ErrLost))
		return nil
	case err != nil:
		return err
	case l.Owner != me || l.Epoch != g.lease.Epoch:
		c.lose(g, fmt.Errorf("%w: taken by %s", ErrLost, ownerName(l.Owner)))
	}
	return nil
}

// take runs the takes and starts a grant for each that succeeds, unless
// the worker is fenced or stopping by then (the lease stays this
// identity's and is taken back later). The first take of a child shard
// deletes its ended parents' leases: the child running means they are no
// longer needed to gate anything.
func (c *Coordinator) take(ctx context.Context, st *loopState, me string, takes []take, byShard map[string]Lease) error {
	var errs []error
	for _, t := range takes {
		cctx, cancel := c.call(ctx)
		l, err := c.store.Take(cctx, t.shardID, me, t.epoch)
		cancel()
		if errors.Is(err, ErrConflict) {
			st.rescan = true // a peer was faster, or our copy was stale
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.stats.taken.Add(1)
		c.mu.Lock()
		delete(c.requested, l.ShardID)
		switch {
		case c.id != me || !time.Now().Before(c.fenceTime()) || c.grants[l.ShardID] != nil:
			c.mu.Unlock()
			continue // it stays this identity's and is taken back later
		case c.stopping:
			c.mu.Unlock()
			errs = append(errs, c.releaseUnstarted(ctx, me, l))
			continue
		}
		g := newGrant(c, l, me)
		if t.reason != takeFromDead && t.epoch > 0 {
			g.handedAt = t.at
		}
		c.grants[l.ShardID] = g
		from := zap.Skip()
		if t.from != "" {
			from = zap.String("from", t.from)
		}
		c.log.Info("lease taken", zap.String("shard_id", l.ShardID), zap.Int64("epoch", l.Epoch), zap.Stringer("reason", t.reason), from)
		// Under c.mu: once Stop has marked the worker stopping, no grant
		// reaches the handler.
		c.h.Acquired(g)
		c.mu.Unlock()
		if t.epoch == 0 {
			errs = append(errs, c.deleteParents(ctx, l, byShard))
		}
	}
	return errors.Join(errs...)
}

// releaseUnstarted gives back a lease taken while the worker began to
// stop: nobody processed it, so its checkpoint is unchanged.
func (c *Coordinator) releaseUnstarted(ctx context.Context, me string, l Lease) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.store.Transfer(cctx, l.ShardID, me, l.Epoch, l.Checkpoint, ""); err != nil && !errors.Is(err, ErrLost) {
		return err
	}
	c.announceChange()
	return nil
}

func (c *Coordinator) deleteParents(ctx context.Context, child Lease, byShard map[string]Lease) error {
	var errs []error
	for _, p := range child.Parents {
		if pl, ok := byShard[p]; !ok || !pl.Ended() {
			continue
		}
		cctx, cancel := c.call(ctx)
		err := c.store.Delete(cctx, p)
		cancel()
		switch {
		case err == nil:
			c.log.Info("ended parent lease deleted", zap.String("shard_id", p), zap.String("child", child.ShardID))
		case !errors.Is(err, ErrConflict):
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// request sends handoff requests and announces them (owners notice on
// their next pass).
func (c *Coordinator) request(ctx context.Context, st *loopState, me string, reqs []request) error {
	var errs []error
	owners := map[string]bool{}
	for _, r := range reqs {
		cctx, cancel := c.call(ctx)
		err := c.store.RequestHandoff(cctx, r.shardID, r.owner, r.epoch, me)
		cancel()
		if errors.Is(err, ErrConflict) {
			st.rescan = true
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		owners[r.owner] = true
		c.mu.Lock()
		c.requested[r.shardID] = time.Now()
		c.mu.Unlock()
		c.stats.requested.Add(1)
		c.log.Info("handoff request sent", zap.String("shard_id", r.shardID), zap.String("owner", r.owner))
	}
	// Tell only the owners asked; the rest of the fleet need not look.
	for owner := range owners {
		cctx, cancel := c.call(ctx)
		if err := c.store.Notify(cctx, owner); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// expireRequests forgets requests that were refused or withdrawn and
// cancels ours that timed out. From a scan (complete) a request no longer
// on its lease is forgotten once it is older than an eventually consistent
// read can lag; a poll only shows the leases asked for, so the same rule
// applies to them. A request forgotten after a poll makes the next pass
// scan (afterPoll): the plan that made it counted the lease as coming.
func (c *Coordinator) expireRequests(ctx context.Context, byShard map[string]Lease, complete bool) error {
	me := c.Identity()
	now := time.Now()
	staleAfter := max(c.cfg.TakeInterval, time.Second)
	c.mu.Lock()
	var cancelIDs []string
	for shard, at := range c.requested {
		l, ok := byShard[shard]
		switch {
		case now.Sub(at) > c.cfg.HandoffTimeout:
			cancelIDs = append(cancelIDs, shard)
			delete(c.requested, shard)
		case (ok || complete) && l.HandoffTo != me && l.Owner != me && now.Sub(at) > staleAfter:
			delete(c.requested, shard) // refused, or the lease moved on
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, shard := range cancelIDs {
		// Not announced, as for a refusal: this worker plans again, and
		// peers that counted the promise look again while the spread
		// they saw is off.
		cctx, cancel := c.call(ctx)
		if err := c.store.CancelHandoff(cctx, shard, me); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// sweep deletes worker items declared dead that no lease names any more.
// One worker does it, the live one with the smallest identity, so peers
// do not race for the same deletes.
func (c *Coordinator) sweep(ctx context.Context, me string, live map[string]bool, snap Snapshot) error {
	for id := range live {
		if id < me {
			return nil
		}
	}
	named := map[string]bool{}
	for _, l := range snap.Leases {
		named[l.Owner], named[l.HandoffTo] = true, true
	}
	var errs []error
	for _, w := range snap.Workers {
		if !w.Dead || named[w.ID] {
			continue
		}
		cctx, cancel := c.call(ctx)
		err := c.store.DeleteDeadWorker(cctx, w.ID)
		cancel()
		if err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// spread is what a plan saw of the balance, to tell whether a look again
// showed any change.
type spread struct{ below, above, most, mine int }

// scheduleScan decides, after a scan and the writes it led to, when to
// scan again:
//   - next pass, when this pass changed what this worker holds (takes,
//     losses) or it is below floor with nothing asked for yet;
//   - while requests are pending it polls them (cheap) and plans again
//     once the last is answered (afterPoll), unless there are more than a
//     poll can follow;
//   - when the fleet looked unbalanced but there was nothing for this
//     worker to do, after lookWait: a few take intervals at random (so
//     that not every worker at floor looks at once), doubling while looks
//     show the same spread. It used to be a one-in-five chance decided
//     only at a scan: once the dice said no the worker only polled, and a
//     fleet whose handoffs completed unannounced stayed at a spread of two
//     until the scan interval (10,000 leases, 200 + 20 workers: 147 s).
func (c *Coordinator) scheduleScan(st *loopState, out planOutput, sent time.Time) {
	pending := len(c.pendingShards())
	switch {
	case len(out.takes) > 0 || len(out.lost) > 0:
		st.rescan = true
	case !out.settled && (pending == 0 || pending > maxPolledRequests):
		st.rescan = true // not balanced yet from here: plan again next pass
	}
	if !out.lookAgain || len(out.requests) > 0 {
		st.look, st.lookWait, st.lookSeen = time.Time{}, 0, spread{}
		return
	}
	seen := spread{out.below, out.above, out.most, out.mine}
	base := c.cfg.TakeInterval + time.Duration(c.rng.Int64N(int64(4*c.cfg.TakeInterval)+1))
	switch {
	case st.lookWait == 0 || seen != st.lookSeen:
		st.lookWait = base
	default:
		st.lookWait = min(2*st.lookWait, c.cfg.ScanInterval)
	}
	st.look, st.lookSeen = sent.Add(st.lookWait), seen
}
