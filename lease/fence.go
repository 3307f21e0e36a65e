package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awserr"
)

// The self-fence. A peer may take this worker's leases only after seeing
// its heartbeat counter unchanged for Duration, and it can only have seen a
// counter after the heartbeat that wrote it was sent. So once the last
// successful heartbeat was *sent* more than Duration - SafetyMargin ago,
// every shard must stop: the margin is what is left for writes already on
// their way to a sink. The fence runs on its own timer (time.AfterFunc),
// never on the goroutines that make table calls, so a table call that
// hangs or answers late cannot delay it.

// fenceTime is the moment every grant must have stopped writing; the zero
// offset (no successful heartbeat yet) is in the past.
func (c *Coordinator) fenceTime() time.Time {
	return c.base.Add(time.Duration(c.fenceAt.Load()))
}

func (c *Coordinator) untilFence() time.Duration { return time.Until(c.fenceTime()) }

// extendFence moves the fence to sent + Duration - SafetyMargin if that is
// later. It reports whether the fence was up: no heartbeat yet (first) or
// a fence that had passed (recovered).
func (c *Coordinator) extendFence(sent time.Time) (first, recovered bool) {
	at := int64(sent.Sub(c.base) + c.cfg.Duration - c.cfg.SafetyMargin)
	for {
		cur := c.fenceAt.Load()
		if at <= cur {
			return false, false
		}
		if c.fenceAt.CompareAndSwap(cur, at) {
			first = cur == 0
			recovered = !first && !time.Now().Before(c.base.Add(time.Duration(cur)))
			break
		}
	}
	c.fenceMu.Lock()
	if c.fenceTimer != nil {
		c.fenceTimer.Reset(c.untilFence())
	}
	c.fenceMu.Unlock()
	return first, recovered
}

// onFenceTimer runs when the fence time may have come.
func (c *Coordinator) onFenceTimer() {
	if d := c.untilFence(); d > 0 { // a heartbeat moved it meanwhile
		c.fenceMu.Lock()
		if c.fenceTimer != nil {
			c.fenceTimer.Reset(d)
		}
		c.fenceMu.Unlock()
		return
	}
	c.fenceAll(fmt.Errorf("%w: no successful heartbeat for %s", ErrFenced, c.sinceRenew().Round(time.Millisecond)))
}

// sinceRenew is how long ago the last successful heartbeat was sent.
func (c *Coordinator) sinceRenew() time.Duration {
	at := c.fenceAt.Load()
	if at == 0 {
		return time.Since(c.base)
	}
	return time.Since(c.base.Add(time.Duration(at) - c.cfg.Duration + c.cfg.SafetyMargin))
}

// fenceAll ends every grant with why, unless the fence moved meanwhile.
func (c *Coordinator) fenceAll(why error) {
	c.mu.Lock()
	if !errors.Is(why, ErrDeclaredDead) && time.Now().Before(c.fenceTime()) {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.endAll(why)
}

// endAll ends every grant with why.
func (c *Coordinator) endAll(why error) {
	c.mu.Lock()
	grants := c.grants
	c.grants = map[string]*Grant{}
	c.mu.Unlock()
	if len(grants) > 0 {
		c.log.Error("stopped processing every shard", zap.Error(why), zap.Int("shards", len(grants)))
	}
	for _, g := range grants {
		if g.end(why) {
			c.stats.fenced.Add(1)
		}
	}
}

// heartbeat writes one heartbeat, bounded by Duration - SafetyMargin (an
// answer after that could no longer move the fence). The renewal time is when the request was sent, not when it
// returned: peers can only have seen the new counter after the send, so
// timing the fence from the send is conservative.
func (c *Coordinator) heartbeat(ctx context.Context) error {
	c.mu.Lock()
	id, held, stopping, first := c.id, len(c.grants), c.stopping, !c.joined
	c.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, c.cfg.Duration-c.cfg.SafetyMargin)
	defer cancel()
	sent := time.Now()
	_, err := c.store.Heartbeat(hctx, id, c.cfg.WorkerID, held, stopping, first)
	if err != nil {
		c.stats.hbFail.Add(1)
		if errors.Is(err, ErrDeclaredDead) {
			c.reincarnate(id)
		}
		return err
	}
	c.mu.Lock()
	still := c.id == id
	if still {
		c.joined = true
	}
	c.mu.Unlock()
	if !still {
		return nil
	}
	if _, recovered := c.extendFence(sent); recovered {
		c.log.Info("heartbeat current again", zap.String("identity", id))
	}
	return nil
}

// reincarnate handles being declared dead: stop every shard at once, and
// rejoin under a new identity (the old one's leases go to whoever takes
// them; its heartbeat can never succeed again).
func (c *Coordinator) reincarnate(old string) {
	c.mu.Lock()
	if c.id != old {
		c.mu.Unlock()
		return
	}
	c.id = newIdentity(c.cfg.WorkerID)
	c.joined = false
	c.requested = map[string]time.Time{}
	id := c.id
	c.mu.Unlock()
	c.fenceAt.Store(0)
	c.stats.reincarnated.Add(1)
	c.log.Warn("declared dead by a peer; rejoining as a new incarnation", zap.String("old_identity", old), zap.String("identity", id))
	c.fenceAll(fmt.Errorf("%w (identity %s)", ErrDeclaredDead, old))
}

// renewLoop sends a heartbeat every RenewInterval, timed from the sends,
// not from the answers: with a slow table the fence is extended by each
// answer as it arrives, and a second heartbeat goes out while the first is
// still on its way (at most two at a time). After a failure it retries
// every quarter interval so one lost request does not cost the leases.
func (c *Coordinator) renewLoop(ctx context.Context) {
	const maxInFlight = 2
	results := make(chan error, maxInFlight)
	inFlight := 0
	timer := time.NewTimer(c.cfg.RenewInterval)
	defer timer.Stop()
	reset := func(d time.Duration) {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(d)
	}
	for {
		select {
		case <-ctx.Done():
			for ; inFlight > 0; inFlight-- {
				<-results
			}
			return
		case <-timer.C:
			if inFlight < maxInFlight {
				inFlight++
				go func() { results <- c.heartbeat(ctx) }()
			}
			reset(c.cfg.RenewInterval)
		case err := <-results:
			inFlight--
			switch {
			case err == nil:
				c.setHeartbeatHealth(nil)
			case ctx.Err() != nil:
			case errors.Is(err, ErrDeclaredDead):
				reset(0) // heartbeat at once under the new identity
			default:
				if awserr.Permanent(err) {
					c.setHeartbeatHealth(fmt.Errorf("lease table refuses heartbeats: %w", err))
				}
				c.log.Warn("heartbeat failed; retrying", zap.Error(err), zap.Duration("since_renew", c.sinceRenew()))
				if inFlight == 0 {
					reset(c.cfg.RenewInterval / 4)
				}
			}
		}
	}
}

func (c *Coordinator) setHeartbeatHealth(err error) {
	c.mu.Lock()
	c.hbErr = err
	c.mu.Unlock()
}
