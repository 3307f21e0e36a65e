package lease_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/lease"
)

// TestDerivedLeaseContextsStartNoGoroutine: net/http derives a context
// for every GetRecords call from the lease context, under the SDK's
// context.WithValue layers. Each derived context used to start a
// goroutine that waited for either end (and woke once more when the call
// finished): a wake-up per call. Derived contexts now register with the
// lease context, and still end with it, with the lease context's error
// (DeadlineExceeded when the worker fenced itself) as their cause.
func TestDerivedLeaseContextsStartNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		defer c.stopAll()
		a := c.start("A", fast)
		c.eventually("A holds the shard", 5*time.Second, func() bool { return len(a.co.Held()) == 1 })
		a.mu.Lock()
		var g *lease.Grant
		for _, gr := range a.grant {
			g = gr
		}
		a.mu.Unlock()
		lctx := g.Context(context.Background())

		synctest.Wait()
		before := runtime.NumGoroutine()
		const n = 50
		var children []context.Context
		type key struct{}
		for range n / 2 {
			cctx, cancel := context.WithCancel(lctx)
			defer cancel()
			tctx, tcancel := context.WithTimeout(context.WithValue(lctx, key{}, 1), time.Hour)
			defer tcancel()
			children = append(children, cctx, tctx)
		}
		// A finished child unregisters; it must not leave anything behind.
		for range n {
			cctx, cancel := context.WithCancel(lctx)
			cancel()
			<-cctx.Done()
		}
		synctest.Wait()
		if extra := runtime.NumGoroutine() - before; extra > 0 {
			t.Errorf("%d contexts derived from a lease context started %d goroutines, want none", 2*n, extra)
		}

		a.setFault(partitioned) // no heartbeat lands: A fences itself
		<-lctx.Done()
		if !errors.Is(lctx.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(lctx), context.DeadlineExceeded) {
			t.Errorf("lease context ended with %v (cause %v), want DeadlineExceeded", lctx.Err(), context.Cause(lctx))
		}
		for i, ch := range children {
			select {
			case <-ch.Done():
			case <-time.After(time.Second):
				t.Fatalf("child %d not ended a second after its lease context", i)
			}
			if !errors.Is(context.Cause(ch), context.DeadlineExceeded) {
				t.Errorf("child %d ended with cause %v, want DeadlineExceeded (fenced)", i, context.Cause(ch))
			}
		}
		a.setFault(nil)
	})
}
