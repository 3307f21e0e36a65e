package processors

import (
	"context"
	"fmt"
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

// Reserve takes n bytes for a record about to be buffered, blocking while
// the budget is spent. While the caller holds bytes of its own (held
// returns more than 0) it calls writeOut, which must write out what the
// caller buffers (or start to) and return once some of it was given back
// with Release, or with the error that stops the caller; the caller's
// own bytes come back first. A caller holding nothing waits for another
// holder to give memory back, having asked them all to write out (Wait).
// A nil budget takes nothing and returns nil. The errors are writeOut's,
// or ctx's wrapped with the budget's figures.
func (b *MemoryBudget) Reserve(ctx context.Context, n int64, held func() int64, writeOut func(context.Context) error) error {
	for {
		ok, freed := b.Acquire(n)
		if ok {
			return nil
		}
		if held() > 0 {
			if err := writeOut(ctx); err != nil {
				return err
			}
			continue
		}
		if err := b.Wait(ctx, freed); err != nil {
			return fmt.Errorf("waiting for buffer memory (max_buffered_bytes: %d of %d bytes in use): %w", b.usedNow.Load(), b.limit, err)
		}
	}
}

// Limit returns the budget's bound in bytes (0 for a nil budget:
// unlimited).
func (b *MemoryBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
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
