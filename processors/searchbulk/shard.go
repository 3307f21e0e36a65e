package searchbulk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// item is one accepted message: its bulk lines are buf[off:end] of its
// batch. A message that cannot be sent (too large, not parsed) has
// off == end and fail set; it is dead-lettered in its place in the order.
type item struct {
	msg      *processors.Message
	index    string // only kept for error reports
	id       string
	off, end int
	fail     error
}

func (it *item) size() int { return it.end - it.off }

// batch is a run of accepted items and the bytes they were encoded into.
type batch struct {
	buf   []byte
	items []item
}

// shardSink is one shard's ShardSink. Write, Flush and Close are called
// from the shard's goroutine; the flusher goroutine (run) does every
// request. They meet in the fields under mu.
type shardSink struct {
	s     *Engine
	shard worker.Shard
	dl    processors.DeadLetterer
	log   *zap.Logger

	cancel context.CancelFunc // stops run
	done   chan struct{}      // closed when run returns
	kick   chan struct{}      // capacity 1: "look at the buffer now"

	// Used by Write only (shard goroutine), no lock.
	namer   indexNamer
	scratch []byte // for ids
	enc     []byte // the item being encoded

	// Used by run only (flusher goroutine), no lock.
	squeezes uint64 // the budget's squeeze count run last answered

	mu       sync.Mutex
	pend     batch     // accepted, not yet taken by run (Write appends, run swaps)
	pendAt   time.Time // when pend got its first item (Write)
	buffered int       // bytes accepted and not yet durable (Write adds, run subtracts)
	urgent   bool      // Flush or a blocked Write waits: send pend regardless of size and age
	accepted uint64    // items accepted (Write)
	durableN uint64    // items durable or dead-lettered, a prefix of the accepted ones (run)
	durable  checkpoint.Position
	changed  chan struct{} // closed and replaced by run on progress or when it stops
	err      error         // why run stopped; set once
}

func (s *Engine) open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) *shardSink {
	ctx, cancel := context.WithCancel(ctx)
	ss := &shardSink{
		s: s, shard: shard, dl: dl,
		log:    s.log.With(zap.String("shard_id", shard.ShardID)),
		cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1),
		namer:   indexNamer{p: s.pattern},
		changed: make(chan struct{}),
	}
	ss.squeezes, _ = s.budget.Squeezes() // a shard that holds nothing yet has nothing to give
	go ss.run(ctx)
	return ss
}

// Write encodes and buffers msgs in order. It blocks while the shard holds
// more than max_buffer_bytes not yet durable, or while the shards of the
// worker together hold max_buffered_bytes (Options.MaxBufferedBytes, a
// processors.MemoryBudget), until the flusher makes room, ctx ends
// (ctx.Err()) or the flusher stops (its error, wrapping ErrStopped,
// ErrRejected or ErrRetriesExhausted). Messages without a parsed event, or
// too large to send, are accepted and dead-lettered in order by the
// flusher.
func (ss *shardSink) Write(ctx context.Context, msgs []*processors.Message) error {
	for _, m := range msgs {
		it := ss.encode(m)
		ss.mu.Lock()
		for ss.buffered >= int(ss.s.opts.MaxBufferBytes) && ss.err == nil {
			ss.urgent = true
			ch := ss.changed
			ss.mu.Unlock()
			ss.poke()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			ss.mu.Lock()
		}
		err := ss.err
		ss.mu.Unlock()
		if err != nil {
			return err
		}
		if n := int64(it.size()); n > 0 {
			if err := ss.s.budget.Reserve(ctx, n, ss.held, ss.writeOut); err != nil {
				return err
			}
		}
		ss.mu.Lock()
		if ss.err != nil {
			err := ss.err
			ss.mu.Unlock()
			ss.s.budget.Release(int64(it.size()))
			return err
		}
		ss.appendLocked(it)
		ss.mu.Unlock()
	}
	ss.poke()
	return nil
}

// encode returns m's item, its bulk lines in ss.enc[:end] (off 0). It
// uses fields only Write uses, and takes no lock: the document is encoded
// before it takes its bytes from the budget.
func (ss *shardSink) encode(m *processors.Message) item {
	it := item{msg: m}
	if !m.Parsed {
		it.fail = processors.Permanent(ErrNotParsed)
		return it
	}
	index := ss.namer.get(m.Event.EventTime)
	ss.scratch = DocID(ss.scratch[:0], m, ss.shard.StreamName)
	it.id = string(ss.scratch)
	ss.enc = AppendIndex(ss.enc[:0], index, it.id, &m.Event)
	it.end = len(ss.enc)
	if limit := int(ss.s.opts.FlushBytes); it.size() > limit {
		it.index = string(index)
		it.fail = processors.Permanent(fmt.Errorf("%w: %d bytes with its action line, above flush_bytes (%d); not sent", ErrDocumentTooLarge, it.size(), limit))
		it.end = 0
	}
	return it
}

// appendLocked adds it, encoded by encode, at the end of pend. ss.mu is
// held; its bytes are taken from the budget already.
func (ss *shardSink) appendLocked(it item) {
	if len(ss.pend.items) == 0 {
		ss.pendAt = time.Now()
	}
	b := &ss.pend
	it.off = len(b.buf)
	b.buf = append(b.buf, ss.enc[:it.end]...)
	it.end = len(b.buf)
	ss.buffered += it.size()
	ss.s.buffered.Add(int64(it.size()))
	b.items = append(b.items, it)
	ss.accepted++
}

// held is the bytes this shard holds of the worker's budget (accepted,
// not yet durable).
func (ss *shardSink) held() int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return int64(ss.buffered)
}

// writeOut is the budget's way to make this shard give memory back: it
// asks the flusher to send what it holds now and waits for it to make
// progress (which releases bytes) or stop.
func (ss *shardSink) writeOut(ctx context.Context) error {
	ss.mu.Lock()
	if ss.err != nil {
		err := ss.err
		ss.mu.Unlock()
		return err
	}
	ss.urgent = true
	ch := ss.changed
	ss.mu.Unlock()
	ss.poke()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poke wakes the flusher without blocking.
func (ss *shardSink) poke() {
	select {
	case ss.kick <- struct{}{}:
	default:
	}
}

// Flush sends everything accepted and returns once it is durable or
// dead-lettered. It blocks until then, until ctx ends (ctx.Err()), or
// until the flusher stops (its error).
func (ss *shardSink) Flush(ctx context.Context) error {
	ss.mu.Lock()
	target := ss.accepted
	ss.urgent = true
	ss.mu.Unlock()
	ss.poke()
	for {
		ss.mu.Lock()
		done, err, ch := ss.durableN >= target, ss.err, ss.changed
		ss.mu.Unlock()
		switch {
		case done:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Durable returns the position of the last message through which every
// accepted message is indexed or dead-lettered. It takes a lock briefly
// and never waits for I/O.
func (ss *shardSink) Durable() checkpoint.Position {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.durable
}

// Close stops the flusher (an in-flight request is abandoned) and waits
// for it. Documents not yet durable are dropped: the next owner of the
// shard replays them. It returns nil.
func (ss *shardSink) Close() error {
	ss.cancel()
	<-ss.done
	ss.mu.Lock()
	held := int64(ss.buffered)
	ss.s.buffered.Add(-held)
	ss.buffered = 0
	ss.mu.Unlock()
	ss.s.budget.Release(held)
	ss.s.stalls.Forget(ss.shard.ShardID)
	return nil
}

// run is the flusher: it takes the buffer when it is full, old enough or
// urgent, or when another shard waits for buffer memory (a squeeze of the
// budget), and delivers it. It returns when ctx ends or delivery fails for
// good, recording why in ss.err.
func (ss *shardSink) run(ctx context.Context) {
	defer close(ss.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var spare batch
	for {
		sq, squeeze := ss.s.budget.Squeezes()
		squeezed := sq != ss.squeezes
		ss.squeezes = sq // sending pend below answers every squeeze so far
		ss.mu.Lock()
		n := len(ss.pend.items)
		age := time.Since(ss.pendAt)
		ready := n > 0 && (ss.urgent || squeezed || len(ss.pend.buf) >= int(ss.s.opts.FlushBytes) || age >= ss.s.opts.FlushInterval)
		var taken batch
		if ready {
			taken, ss.pend = ss.pend, batch{buf: spare.buf[:0], items: spare.items[:0]}
			ss.urgent = false
		} else if n == 0 {
			ss.urgent = false
		}
		ss.mu.Unlock()
		if !ready {
			if n > 0 {
				timer.Reset(ss.s.opts.FlushInterval - age)
			}
			select {
			case <-ctx.Done():
				ss.stop(fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx)))
				return
			case <-ss.kick:
			case <-timer.C:
			case <-squeeze:
			}
			timer.Stop()
			continue
		}
		if err := ss.deliver(ctx, taken); err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrStopped, err)
			} else {
				// Logged as well as returned: the failure happens here,
				// asynchronously, and an idle shard may not call Write or
				// Flush again for a long time.
				ss.log.Error(ss.s.opts.Product+" shard sink stopped; the shard stops without a checkpoint at its next write", zap.Error(err))
			}
			ss.stop(err)
			return
		}
		clear(taken.items) // drop message references
		spare = batch{}
		if cap(taken.buf) <= int(ss.s.opts.FlushBytes) {
			spare = taken // reuse it; a bigger one (after a burst) is left to the GC
		}
	}
}

// stop records why the flusher stopped and wakes every waiter.
func (ss *shardSink) stop(err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.err == nil {
		ss.err = fmt.Errorf("%s: shard %s: %w", ss.s.opts.Product, ss.shard.ShardID, err)
	}
	close(ss.changed)
	ss.changed = make(chan struct{})
}

// advance marks the items of a finished chunk durable.
func (ss *shardSink) advance(items []item) {
	bytes := 0
	for i := range items {
		bytes += items[i].size()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.durableN += uint64(len(items))
	ss.durable = items[len(items)-1].msg.Position()
	ss.buffered -= bytes
	ss.s.buffered.Add(-int64(bytes))
	ss.s.budget.Release(int64(bytes))
	close(ss.changed)
	ss.changed = make(chan struct{})
}
