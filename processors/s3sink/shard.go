package s3sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// Errors a message is dead-lettered with.
var (
	// ErrNotParsed: the message reached the sink without a parsed event
	// (no parser in the pipeline, or the parser did not set Parsed).
	// It is processors.ErrNotParsed.
	ErrNotParsed = processors.ErrNotParsed
	// ErrNoEventTime: partitioning by event time, and the event has none.
	ErrNoEventTime = errors.New("s3sink: event has no event_time to partition by")
)

// Open starts a ShardSink for shard. It starts one goroutine that writes
// out buffers older than max_age until ctx ends (the worker passes the
// lease's context: a lost lease stops it) or Close. It does not block;
// its only error is a nil dead-letterer.
func (s *Sink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	if dl == nil {
		return nil, errors.New("s3sink: nil dead-letterer")
	}
	ctx, cancel := context.WithCancel(ctx)
	ss := &shardSink{
		s: s, shard: shard, dl: dl,
		log:     s.log.With(zap.String("shard_id", shard.ShardID)),
		open:    map[string]*buffer{},
		indexes: map[string]*partIndex{},
		cancel:  cancel, done: make(chan struct{}),
	}
	ss.squeezes, _ = s.budget.Squeezes() // a shard that holds nothing yet has nothing to give
	go ss.ageLoop(ctx)
	return ss, nil
}

// record is one buffered line.
type record struct {
	pos  checkpoint.Position
	prev checkpoint.Position // the position accepted just before this one
	ord  uint64              // acceptance order within the shard sink
	end  int                 // end offset of its line in buffer.data
}

// buffer is one partition's object in the making. Records before start
// are in S3 already (written, or found archived); data[off:] is the rest.
type buffer struct {
	dir    string // "dt=YYYY-MM-DD/hour=HH/"
	data   []byte
	recs   []record
	start  int
	off    int
	opened time.Time
}

func (b *buffer) pending() int { return len(b.recs) - b.start }
func (b *buffer) bytes() int64 { return int64(len(b.data) - b.off) }

// advance marks records up to (excluding) i as in S3.
func (b *buffer) advance(i int) {
	b.start = i
	if i > 0 {
		b.off = b.recs[i-1].end
	}
}

// shardSink is one shard's writer. The pipeline calls Write, Flush,
// Durable and Close from one goroutine at a time; ageLoop runs
// concurrently, so state is guarded by mu, which is never held during I/O.
// Uploads (the only I/O) are serialised by upMu, so buffers reach S3 in
// the order they were sealed and the partition indexes need no more
// locking.
type shardSink struct {
	s     *Sink
	shard worker.Shard
	dl    processors.DeadLetterer
	log   *zap.Logger

	mu        sync.Mutex
	open      map[string]*buffer  // by partition dir; guarded by mu
	sealed    []*buffer           // waiting for or in upload, in order; guarded by mu
	openBytes int64               // sum of open buffers' bytes; guarded by mu
	last      checkpoint.Position // last accepted (or dead-lettered) message; guarded by mu
	nextOrd   uint64              // acceptance counter; guarded by mu
	err       error               // sticky permanent failure; guarded by mu
	held      int64               // bytes taken from the sink's budget; guarded by mu

	scratch  []byte // one encoded line; used by Write only
	squeezes uint64 // the budget's squeeze count ageLoop last answered; used by ageLoop only

	upMu    sync.Mutex
	indexes map[string]*partIndex // guarded by upMu
	useTick uint64                // LRU clock for indexes; guarded by upMu

	cancel context.CancelFunc
	done   chan struct{}
}

// Write buffers msgs by partition and writes out every buffer that
// reached a threshold before it returns (backpressure). Messages with no
// parsed event are dead-lettered first. Each record takes its bytes from
// the worker's buffer budget first; when the budget is spent, Write writes
// out this shard's buffers, or, if it holds none, waits for the other
// shards to write out theirs. An error means the shard cannot go on: ctx
// ended, dead-lettering failed, or S3 refused permanently.
func (ss *shardSink) Write(ctx context.Context, msgs []*processors.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ss.stickyErr(); err != nil {
		return err
	}
	parts := make([]string, len(msgs))
	var dead []*processors.Message
	deadIdx := map[int]bool{}
	for i, m := range msgs {
		dir, err := ss.partition(m)
		if err != nil {
			// The message is shared with other sinks: mark a copy.
			dead = append(dead, m.FailedCopy(ss.s.opts.Name, 1, err))
			deadIdx[i] = true
			continue
		}
		parts[i] = dir
	}
	if len(dead) > 0 {
		// Before anything after them is accepted: Durable may then pass them.
		if err := ss.dl.DeadLetter(ctx, dead); err != nil {
			return fmt.Errorf("s3sink: dead-letter %d records: %w", len(dead), err)
		}
	}
	sealedAny := false
	for i, m := range msgs {
		pos := m.Position()
		if deadIdx[i] {
			ss.mu.Lock()
			ss.last = pos
			ss.mu.Unlock()
			continue
		}
		ev := m.Event
		if ev.SourceRecord == (event.SourceRecord{}) {
			r := m.Record
			ev.SourceRecord = event.SourceRecord{Stream: r.StreamName, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
		}
		ss.scratch = append(ev.AppendJSON(ss.scratch[:0]), '\n')
		if err := ss.reserve(ctx, int64(len(ss.scratch))); err != nil {
			return err
		}
		now := ss.s.now()
		ss.mu.Lock()
		b := ss.open[parts[i]]
		if b == nil {
			b = &buffer{dir: parts[i], opened: now}
			ss.open[parts[i]] = b
		}
		b.data = append(b.data, ss.scratch...)
		ss.openBytes += int64(len(ss.scratch))
		b.recs = append(b.recs, record{pos: pos, prev: ss.last, ord: ss.nextOrd, end: len(b.data)})
		ss.nextOrd++
		ss.last = pos
		if b.bytes() >= ss.s.opts.MaxBytes || b.pending() >= ss.s.opts.MaxRecords {
			ss.sealLocked(b)
			sealedAny = true
		}
		for ss.openBytes > ss.s.opts.MaxBytes {
			ss.sealLocked(ss.oldestOpenLocked())
			sealedAny = true
		}
		ss.mu.Unlock()
	}
	if !sealedAny {
		return nil
	}
	return ss.drain(ctx)
}

// reserve takes n bytes from the sink's budget for a record about to be
// buffered (processors.MemoryBudget.Reserve): when the budget is spent it
// writes out this shard's buffers, which gives their bytes back, and
// tries again; a shard that holds nothing waits until another gives
// memory back, having asked them all to write out what they hold. It
// blocks; its errors are drain's or ctx's.
func (ss *shardSink) reserve(ctx context.Context, n int64) error {
	held := func() int64 {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.held
	}
	writeOut := func(ctx context.Context) error {
		ss.mu.Lock()
		ss.sealAllLocked()
		ss.mu.Unlock()
		return ss.drain(ctx)
	}
	if err := ss.s.budget.Reserve(ctx, n, held, writeOut); err != nil {
		return err
	}
	ss.mu.Lock()
	ss.held += n
	ss.mu.Unlock()
	return nil
}

// Flush writes out every open buffer and returns once all of them are in
// S3 (or an error: ctx ended, or a permanent S3 failure).
func (ss *shardSink) Flush(ctx context.Context) error {
	if err := ss.stickyErr(); err != nil {
		return err
	}
	ss.mu.Lock()
	ss.sealAllLocked()
	ss.mu.Unlock()
	return ss.drain(ctx)
}

// sealAllLocked seals every open buffer, oldest first, so that Durable
// advances as each one lands. ss.mu is held.
func (ss *shardSink) sealAllLocked() {
	bufs := make([]*buffer, 0, len(ss.open))
	for _, b := range ss.open {
		bufs = append(bufs, b)
	}
	slices.SortFunc(bufs, func(a, b *buffer) int { return cmpOrd(a.recs[a.start].ord, b.recs[b.start].ord) })
	for _, b := range bufs {
		ss.sealLocked(b)
	}
}

// Durable returns the position just before the oldest record that is not
// in S3 yet, or the last accepted position when every record is. It does
// not block (mu is never held during I/O).
func (ss *shardSink) Durable() checkpoint.Position {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest *record
	consider := func(b *buffer) {
		if b.pending() == 0 {
			return
		}
		if r := &b.recs[b.start]; oldest == nil || r.ord < oldest.ord {
			oldest = r
		}
	}
	for _, b := range ss.open {
		consider(b)
	}
	for _, b := range ss.sealed {
		consider(b)
	}
	if oldest == nil {
		return ss.last
	}
	return oldest.prev
}

// Close stops the age loop and waits for it (an upload in progress is
// cancelled). Unwritten records are dropped, and their memory given back
// to the budget; the next owner replays them.
func (ss *shardSink) Close() error {
	ss.cancel()
	<-ss.done
	ss.upMu.Lock() // no upload is running after this
	defer ss.upMu.Unlock()
	ss.mu.Lock()
	held := ss.held
	ss.held = 0
	ss.open, ss.sealed, ss.openBytes = map[string]*buffer{}, nil, 0
	ss.mu.Unlock()
	ss.s.budget.Release(held)
	ss.s.stalls.Forget(ss.shard.ShardID)
	return nil
}

func (ss *shardSink) stickyErr() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.err
}

// partition returns the partition directory of m, or why m cannot be
// archived.
func (ss *shardSink) partition(m *processors.Message) (string, error) {
	if !m.Parsed {
		return "", ErrNotParsed
	}
	t := m.Record.ArrivalTime
	if ss.s.opts.PartitionBy == PartitionByEventTime {
		if m.Event.EventTime.IsZero() {
			return "", ErrNoEventTime
		}
		t = m.Event.EventTime
	}
	return partitionDir(t), nil
}

// partitionDir is the Hive-style directory of t, in UTC.
func partitionDir(t time.Time) string {
	return t.UTC().Format("dt=2006-01-02/hour=15/")
}

func (ss *shardSink) sealLocked(b *buffer) {
	delete(ss.open, b.dir)
	ss.openBytes -= b.bytes()
	ss.sealed = append(ss.sealed, b)
}

func (ss *shardSink) oldestOpenLocked() *buffer {
	var oldest *buffer
	for _, b := range ss.open {
		if oldest == nil || b.recs[b.start].ord < oldest.recs[oldest.start].ord {
			oldest = b
		}
	}
	return oldest
}

// ageLoop writes out buffers older than max_age until ctx ends. A slow
// trickle still reaches S3 (and the checkpoint) within about max_age,
// although Write is not called while the shard is idle. When another
// shard waits for buffer memory it writes out everything it holds.
func (ss *shardSink) ageLoop(ctx context.Context) {
	defer close(ss.done)
	t := time.NewTicker(ss.s.tick)
	defer t.Stop()
	for {
		n, next := ss.s.budget.Squeezes()
		squeezed := n != ss.squeezes
		if !squeezed {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-next:
				squeezed = true
			}
		}
		if squeezed {
			ss.squeezes, _ = ss.s.budget.Squeezes() // the flush below answers every squeeze so far
		}
		// A permanent failure is kept in ss.err and returned by the next
		// Write or Flush (which stop the shard); a cancelled ctx ends the
		// loop above. Neither needs handling here.
		_ = ss.flushAged(ctx, squeezed)
	}
}

// flushAged seals the buffers older than max_age (all of them when all
// is set) and writes out whatever is sealed.
func (ss *shardSink) flushAged(ctx context.Context, all bool) error {
	now := ss.s.now()
	ss.mu.Lock()
	if ss.err != nil {
		ss.mu.Unlock()
		return nil // reported by Write or Flush
	}
	if all {
		ss.sealAllLocked()
	}
	for _, b := range ss.open {
		if now.Sub(b.opened) >= ss.s.opts.MaxAge {
			ss.sealLocked(b)
		}
	}
	n := len(ss.sealed)
	ss.mu.Unlock()
	if n == 0 {
		return nil
	}
	return ss.drain(ctx)
}

// drain uploads sealed buffers in order until none is left. Whoever holds
// upMu drains for everyone, so when drain returns nil every buffer sealed
// before the call is in S3.
func (ss *shardSink) drain(ctx context.Context) error {
	ss.upMu.Lock()
	defer ss.upMu.Unlock()
	for {
		ss.mu.Lock()
		if ss.err != nil {
			err := ss.err
			ss.mu.Unlock()
			return err
		}
		if len(ss.sealed) == 0 {
			ss.mu.Unlock()
			return nil
		}
		b := ss.sealed[0]
		ss.mu.Unlock()

		err := ss.upload(ctx, b)

		var done int64
		ss.mu.Lock()
		switch {
		case err == nil:
			ss.sealed[0] = nil
			ss.sealed = ss.sealed[1:]
			done = int64(len(b.data))
			ss.held -= done
		case processors.IsPermanent(err):
			ss.err = err
		}
		ss.mu.Unlock()
		ss.s.budget.Release(done)
		if err != nil {
			return err
		}
	}
}

func cmpOrd(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
