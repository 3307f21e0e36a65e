package processors

import (
	"context"
	"sync"
	"sync/atomic"
)

// MemoryBudget bounds the bytes that the shard sinks of one sink hold in
// memory in one worker, whatever the number of shards it holds: a
// per-shard bound multiplies with the shards (32 shards of 64 MiB hold
// 2 GiB), a shared budget does not. A shard sink takes bytes before it
// buffers a record and gives them back once they are durable (or dropped
// at Close). When the budget is spent, a writer first writes out what its
// own shard holds; a writer whose shard holds nothing waits (backpressure:
// its shard reads nothing more) and tells the other holders to write out
// theirs (Squeezes). A nil *MemoryBudget is unlimited. Safe for concurrent
// use.
type MemoryBudget struct {
	limit int64

	mu       sync.Mutex
	used     int64         // guarded by mu
	freed    chan struct{} // guarded by mu; closed and replaced by Release
	squeezed chan struct{} // guarded by mu; closed and replaced by Wait
	squeezes uint64        // guarded by mu; Waits so far

	usedNow atomic.Int64 // copy of used for lock-free reads
	waits   atomic.Int64
}

// NewMemoryBudget returns a budget of limit bytes (limit > 0).
func NewMemoryBudget(limit int64) *MemoryBudget {
	return &MemoryBudget{limit: limit, freed: make(chan struct{}), squeezed: make(chan struct{})}
}

// Acquire takes n bytes if they fit, or if nothing at all is held (so
// that one record larger than the whole budget still gets through). When
// it fails it returns the channel that the next Release closes: pass it to
// Wait, so that a release between the two calls is not missed. It does not
// block.
func (b *MemoryBudget) Acquire(n int64) (ok bool, freed <-chan struct{}) {
	if b == nil {
		return true, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.limit || b.used == 0 {
		b.used += n
		b.usedNow.Store(b.used)
		return true, nil
	}
	return false, b.freed
}

// Wait asks every holder to write out what it holds (see Squeezes) and
// blocks until freed is closed (memory was given
// back) or ctx ends, returning ctx.Err() then.
func (b *MemoryBudget) Wait(ctx context.Context, freed <-chan struct{}) error {
	b.waits.Add(1)
	b.mu.Lock()
	b.squeezes++
	close(b.squeezed)
	b.squeezed = make(chan struct{})
	b.mu.Unlock()
	select {
	case <-freed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives n bytes back and wakes the writers waiting for memory.
func (b *MemoryBudget) Release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.usedNow.Store(b.used)
	close(b.freed)
	b.freed = make(chan struct{})
}

// Squeezes returns how many times a writer has started waiting for memory
// so far, and a channel that is closed when the next one does. A holder
// remembers the count it last acted on: when the count has moved, or the
// channel closes, it should write out what it buffers. (A channel alone
// would miss a wait that happened before the holder first looked.) A nil
// budget returns 0 and nil (never fires).
func (b *MemoryBudget) Squeezes() (n uint64, next <-chan struct{}) {
	if b == nil {
		return 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.squeezes, b.squeezed
}

// Fill sets the buffer fields of st: bytes held, the limit, and how many
// times a writer waited.
func (b *MemoryBudget) Fill(st *SinkState) {
	if b == nil {
		return
	}
	st.BufferedBytes, st.BufferLimit, st.BufferWaits = b.usedNow.Load(), b.limit, b.waits.Load()
}
