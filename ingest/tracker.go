package ingest

import (
	"context"
	"sync"
)

// tracker follows the records of one file through the producer and keeps
// its watermark: the line of the last record such that it and every record
// put before it were confirmed written. Only the watermark is ever recorded
// as a resume offset, so no line is skipped on resume, whatever order
// Kinesis confirms records in.
//
// The file's reading goroutine calls add, abandon and the waits; the
// producer's goroutines call settle. All fields are guarded by mu.
type tracker struct {
	mu       sync.Mutex
	slots    []slot // slots[head:]: records put and not yet below the watermark, in put order
	head     int
	base     int64 // sequence number of slots[head]; also the count of records below the watermark
	line     int   // watermark: line of the last record below it (0: none yet)
	unsettle int   // records put without an outcome yet
	failed   error // first record the producer gave up on
	changed  chan struct{}
	waiting  bool // someone waits on changed: close and replace it on a change
}

// slot is one record put.
type slot struct {
	line    int
	settled bool
	ok      bool
}

// ticket rides in producer.Record.Meta back to the tracker.
type ticket struct {
	t   *tracker
	seq int64
}

func newTracker(startLine int) *tracker {
	return &tracker{line: startLine, changed: make(chan struct{})}
}

// add registers a record about to be put and returns its sequence number.
func (t *tracker) add(line int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head > 0 && t.head >= len(t.slots)/2 {
		// Compact now and then, so the array is reused and its size stays
		// bounded by the window, at O(1) amortized per record.
		t.slots = t.slots[:copy(t.slots, t.slots[t.head:])]
		t.head = 0
	}
	t.slots = append(t.slots, slot{line: line})
	t.unsettle++
	return t.base + int64(len(t.slots)-t.head) - 1
}

// abandon unregisters the record just added, which the producer did not
// accept.
func (t *tracker) abandon(seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := seq - t.base; i == int64(len(t.slots)-t.head)-1 {
		t.slots = t.slots[:len(t.slots)-1]
		t.unsettle--
	}
}

// settle records a record's outcome (err nil: written) and moves the
// watermark over the settled prefix. A failed record stops the watermark
// for good. Safe to call from any goroutine, once per record.
func (t *tracker) settle(seq int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.slots[t.head:]
	i := seq - t.base
	if i < 0 || i >= int64(len(live)) || live[i].settled {
		return
	}
	live[i] = slot{line: live[i].line, settled: true, ok: err == nil}
	t.unsettle--
	if err != nil && t.failed == nil {
		t.failed = err
	}
	k := 0
	for k < len(live) && live[k].settled && live[k].ok {
		t.line = live[k].line
		k++
	}
	t.head += k
	t.base += int64(k)
	if t.waiting {
		close(t.changed)
		t.changed, t.waiting = make(chan struct{}), false
	}
}

// state returns the watermark line, the records below it, and the first
// failure.
func (t *tracker) state() (line int, below int64, failed error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line, t.base, t.failed
}

// waitRoom blocks until fewer than window records are above the watermark
// (put but not all confirmed in order). It returns the producer's failure
// if a record failed, or ctx's error.
func (t *tracker) waitRoom(ctx context.Context, window int) error {
	for {
		t.mu.Lock()
		failed, full, ch := t.failed, len(t.slots)-t.head >= window, t.changed
		t.waiting = t.waiting || full
		t.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case !full:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// waitChange blocks until some record settles or ctx ends. It reports
// whether every record put has an outcome (then it does not block).
func (t *tracker) waitChange(ctx context.Context) (allSettled bool, err error) {
	t.mu.Lock()
	done, ch := t.unsettle == 0, t.changed
	t.waiting = t.waiting || !done
	t.mu.Unlock()
	if done {
		return true, nil
	}
	select {
	case <-ch:
		return false, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}
