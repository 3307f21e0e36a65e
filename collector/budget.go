package collector

import (
	"context"
	"sync"
)

// budget admits whole requests into the producer's buffer: it counts the
// events (and their bytes) accepted but not yet resolved by the producer,
// and a request takes room for all its events at once or none. It has the
// same limits as the producer's buffer and is released from the producer's
// result handler, just before the producer frees the same room, so a Put
// after a successful acquire never waits longer than a result handler
// runs, and a request is never half accepted for lack of space.
//
// Safe for concurrent use.
type budget struct {
	maxRecords, maxBytes int

	mu sync.Mutex
	// Guarded by mu.
	records, bytes int
	waiters        int
	freed          chan struct{} // closed and replaced when room frees while waiters > 0
}

func newBudget(records, bytes int) *budget {
	return &budget{maxRecords: records, maxBytes: bytes, freed: make(chan struct{})}
}

// fitsLocked reports whether records and bytes fit now. A request larger
// than the whole budget is admitted into an empty one (the producer then
// blocks per record until sends free room), so it is slow, never stuck.
func (b *budget) fitsLocked(records, bytes int) bool {
	if b.records == 0 && b.bytes == 0 {
		return true
	}
	return b.records+records <= b.maxRecords && b.bytes+bytes <= b.maxBytes
}

// tryAcquire takes room for records and bytes if it is free now.
func (b *budget) tryAcquire(records, bytes int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fitsLocked(records, bytes) {
		return false
	}
	b.records += records
	b.bytes += bytes
	return true
}

// acquire waits until room for records and bytes is free and takes it. It
// returns ctx's cause when ctx ends first; nothing is taken then. Waiters
// are not served in order: a large request can lose to a stream of small
// ones until its ctx ends.
func (b *budget) acquire(ctx context.Context, records, bytes int) error {
	for {
		b.mu.Lock()
		if b.fitsLocked(records, bytes) {
			b.records += records
			b.bytes += bytes
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.waiters++
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
}

// release returns room taken by acquire or tryAcquire.
func (b *budget) release(records, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.records -= records
	b.bytes -= bytes
	if b.waiters > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
}

// used returns the records and bytes taken.
func (b *budget) used() (records, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes
}
