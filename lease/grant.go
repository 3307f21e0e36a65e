package lease

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errTransferred ends a grant whose lease this worker handed over,
// released or dropped.
var errTransferred = errors.New("lease: transferred")

// Grant is this worker's hold on one lease at one epoch: the handle a
// consumer processes the shard under. Every checkpoint and transfer names
// the grant, so a write is always fenced on the epoch this grant was given
// (never on a newer one the same process took later). A grant ends once:
// when its lease is lost, when the worker fences itself, or when it is
// transferred or dropped. Its methods are safe for concurrent use.
type Grant struct {
	c     *Coordinator
	lease Lease  // as taken
	owner string // the incarnation it was granted to
	// handedAt: when a live owner handed the lease over or released it,
	// by its clock; zero for a lease never owned or taken from a dead
	// owner (see HandedAt).
	handedAt time.Time

	done     chan struct{}
	mu       sync.Mutex
	err      error         // guarded by mu: why it ended
	ends     []func(error) // guarded by mu: called once when it ends
	signaled string        // guarded by mu: requester the handler was last told about
}

func newGrant(c *Coordinator, l Lease, owner string) *Grant {
	return &Grant{c: c, lease: l, owner: owner, done: make(chan struct{})}
}

// Lease returns the lease as it was taken: its epoch and the checkpoint to
// resume from.
func (g *Grant) Lease() Lease { return g.lease }

// HandedAt is when the lease's previous owner, alive, handed it over to
// this worker or released it, by that owner's wall clock (the lease's
// UpdatedAt as this worker read it before taking it); zero when the lease
// was never owned or was taken from an owner declared dead. That owner
// may have read the shard moments before, so a consumer that keeps a read
// ceiling per shard waits until one ceiling interval after HandedAt (and
// at most one interval, whatever the clocks) before its first read: the
// shard's readers together then stay within the ceiling.
func (g *Grant) HandedAt() time.Time { return g.handedAt }

// ShardID is the lease's shard.
func (g *Grant) ShardID() string { return g.lease.ShardID }

// Done is closed when the grant ends.
func (g *Grant) Done() <-chan struct{} { return g.done }

// Err reports why the grant ended: nil while it is held or after a
// transfer, an error wrapping ErrLost (taken, deleted, epoch moved),
// ErrFenced (heartbeat too old) or ErrDeclaredDead.
func (g *Grant) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if errors.Is(g.err, errTransferred) {
		return nil
	}
	return g.err
}

// Fenced reports whether the fence time has passed: the worker's last
// successful heartbeat is too old for it to write anything more. The
// grant ends a moment later, when the fence timer runs.
func (g *Grant) Fenced() bool { return !time.Now().Before(g.c.fenceTime()) }

func (g *Grant) ended() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// signal records that the handler is told to hand over to `to`; false if
// it was told already.
func (g *Grant) signal(to string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.signaled == to {
		return false
	}
	g.signaled = to
	return true
}

// end ends the grant with err; false if it had ended already.
func (g *Grant) end(err error) bool {
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return false
	}
	g.err = err
	ends := g.ends
	g.ends = nil
	close(g.done)
	g.mu.Unlock()
	for _, f := range ends {
		f(err)
	}
	return true
}

// onEnd registers f to run when the grant ends (at once if it has).
func (g *Grant) onEnd(f func(error)) {
	g.mu.Lock()
	if g.err != nil {
		err := g.err
		g.mu.Unlock()
		f(err)
		return
	}
	g.ends = append(g.ends, f)
	g.mu.Unlock()
}

// Context returns the lease context for processing this grant's shard:
// it ends when parent ends, when the grant ends, or when the fence time
// passes, whichever is first. Give it to the processor and its sinks, and
// check it (Err) before every write: a write begun after Err returned nil
// starts before the fence, and so before any peer may take the lease.
//
// Deadline reports the fence time: the moment this worker must have
// stopped writing, Duration - SafetyMargin after its last successful
// heartbeat was sent. Unlike a plain context deadline it moves later each
// time a heartbeat succeeds, so successive calls may return later times;
// an earlier reading is always a safe (earlier) bound. Err checks the
// clock itself, so it reports context.DeadlineExceeded the instant the
// fence time passes, even before the fence timer has run.
//
// Contexts derived from it (context.WithCancel, WithTimeout) end when it
// ends, with context.Canceled and its error as their cause
// (context.Cause): DeadlineExceeded once fenced.
func (g *Grant) Context(parent context.Context) context.Context {
	inner, cancel := context.WithCancelCause(context.Background())
	lc := &leaseCtx{parent: parent, g: g, inner: inner, cancel: cancel}
	stop := context.AfterFunc(parent, func() { lc.end(context.Cause(parent)) })
	g.onEnd(func(err error) {
		stop()
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrDeclaredDead) {
			lc.end(context.DeadlineExceeded)
		} else {
			lc.end(context.Canceled)
		}
	})
	return lc
}

// leaseCtx is the context Grant.Context returns. Its Done channel is
// that of inner, a plain cancel context that ends when the lease context
// ends, and Value hands inner out as the context package's own cancel
// context: contexts derived from the lease context, directly or under
// context.WithValue layers (net/http derives one for every request, under
// the SDK's values), then register with inner. Otherwise each would start
// a goroutine to wait for either end, and wake it once more when the
// request finished: a wake-up and a goroutine per GetRecords call.
type leaseCtx struct {
	parent context.Context
	g      *Grant
	inner  context.Context         // its Done is ours; answers no Value but the context package's own key
	cancel context.CancelCauseFunc // ends inner (closes Done)
	mu     sync.Mutex
	err    error // guarded by mu
}

func (lc *leaseCtx) end(err error) {
	if err == nil {
		err = context.Canceled
	}
	lc.mu.Lock()
	first := lc.err == nil
	if first {
		lc.err = err
	}
	lc.mu.Unlock()
	if first {
		lc.cancel(err)
	}
}

func (lc *leaseCtx) Deadline() (time.Time, bool) {
	f := lc.g.c.fenceTime()
	if d, ok := lc.parent.Deadline(); ok && d.Before(f) {
		return d, true
	}
	return f, true
}

func (lc *leaseCtx) Done() <-chan struct{} { return lc.inner.Done() }

func (lc *leaseCtx) Err() error {
	lc.mu.Lock()
	err := lc.err
	lc.mu.Unlock()
	if err != nil {
		return err
	}
	if !time.Now().Before(lc.g.c.fenceTime()) {
		lc.end(context.DeadlineExceeded)
		return context.DeadlineExceeded
	}
	return nil
}

func (lc *leaseCtx) Value(key any) any {
	if v := lc.inner.Value(key); v != nil {
		return v // the context package asking for the cancel context
	}
	return lc.parent.Value(key)
}

func (lc *leaseCtx) String() string { return "lease.Context(" + lc.g.lease.ShardID + ")" }
