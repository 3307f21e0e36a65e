package localrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// errNotParsed is the reason the stdout sink dead-letters a message that no
// parse stage turned into a document.
var errNotParsed = errors.New("localrun: record was not parsed; the pipeline needs a parse stage")

// stdoutSink writes each message's document as one NDJSON line. It is the
// sink of a run without --sinks. Safe for concurrent use.
type stdoutSink struct {
	w io.Writer

	mu  sync.Mutex
	bw  *bufio.Writer
	buf []byte
}

func (s *stdoutSink) Name() string { return stdoutSinkType }

func (s *stdoutSink) Open(_ context.Context, _ worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bw == nil {
		if s.w == nil {
			s.w = io.Discard
		}
		s.bw = bufio.NewWriterSize(s.w, 64<<10)
	}
	return &stdoutShard{s: s, dl: dl}, nil
}

func (s *stdoutSink) Close(context.Context) error { return s.flush() }

// flush writes out what is buffered.
func (s *stdoutSink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bw == nil {
		return nil
	}
	return s.bw.Flush()
}

// stdoutShard is one input's view of the stdout sink.
type stdoutShard struct {
	s       *stdoutSink
	dl      processors.DeadLetterer
	durable checkpoint.Position
}

func (sh *stdoutShard) Write(ctx context.Context, msgs []*processors.Message) error {
	var failed []*processors.Message
	sh.s.mu.Lock()
	for _, m := range msgs {
		if !m.Parsed {
			c := *m // other sinks may share the message: mark a copy
			c.Fail(stdoutSinkType, 1, errNotParsed)
			failed = append(failed, &c)
			continue
		}
		sh.s.buf = m.Event.AppendJSON(sh.s.buf[:0])
		sh.s.buf = append(sh.s.buf, '\n')
		if _, err := sh.s.bw.Write(sh.s.buf); err != nil {
			sh.s.mu.Unlock()
			return fmt.Errorf("write documents: %w", err)
		}
	}
	// Write out each batch, so documents stream as the input is read.
	if err := sh.s.bw.Flush(); err != nil {
		sh.s.mu.Unlock()
		return fmt.Errorf("write documents: %w", err)
	}
	sh.s.mu.Unlock()
	if len(failed) > 0 {
		if err := sh.dl.DeadLetter(ctx, failed); err != nil {
			return err
		}
	}
	if len(msgs) > 0 {
		sh.durable = msgs[len(msgs)-1].Position()
	}
	return nil
}

func (sh *stdoutShard) Flush(context.Context) error  { return sh.s.flush() }
func (sh *stdoutShard) Durable() checkpoint.Position { return sh.durable }
func (sh *stdoutShard) Close() error                 { return nil }

// textDeadLetters writes dead letters for people, one line each:
//
//	dead letter: access.log.gz:14 [parse] cloudfront: wrong field count: has 31 fields, layout has 33
//
// Safe for concurrent use.
type textDeadLetters struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *textDeadLetters) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	if d.w == nil {
		return nil
	}
	var b strings.Builder
	for _, m := range msgs {
		stage, reason := "unknown", "unknown"
		if f := m.Failed(); f != nil {
			stage = f.Stage
			if f.Err != nil {
				reason = f.Err.Error()
			}
		}
		fmt.Fprintf(&b, "dead letter: %s:%s [%s] %s\n", m.Record.ShardID, m.Record.SequenceNumber, stage, reason)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := io.WriteString(d.w, b.String())
	return err
}

// countedDeadLetters counts what it passes to dl, by whether a sink or a
// processor gave up. Safe for concurrent use.
type countedDeadLetters struct {
	dl processors.DeadLetterer
	c  *counter
}

func (d *countedDeadLetters) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	if err := d.dl.DeadLetter(ctx, msgs); err != nil {
		return err
	}
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	for _, m := range msgs {
		d.c.deadLetters++
		if f := m.Failed(); f != nil && d.c.sinks[f.Stage] {
			d.c.sinkDeadLetters++
		}
	}
	return nil
}

// counter observes the pipeline for the summary. Safe for concurrent use.
type counter struct {
	mu                           sync.Mutex
	firstSink                    string
	sinks                        map[string]bool // sink names: their dead letters were not filtered by processors
	toSink                       int64           // messages handed to the first sink
	deadLetters, sinkDeadLetters int64
}

func (c *counter) StageDone(string, int, int, time.Duration) {}
func (c *counter) DeadLettered(string, int)                  {}
func (c *counter) StageRetry(string)                         {}

// SinkWrite counts what the first sink accepts. The pipeline hands each
// batch to its sinks in order, so the first name reported is the first
// sink's (a sink's Name need not be its config name).
func (c *counter) SinkWrite(sink string, n int, _ int64, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstSink == "" {
		c.firstSink = sink
	}
	c.sinks[sink] = true
	if sink == c.firstSink {
		c.toSink += int64(n)
	}
}

// fill completes the summary's counts; Read must be set.
func (c *counter) fill(s *Summary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.DeadLetters = c.deadLetters
	s.Documents = c.toSink - c.sinkDeadLetters
	s.Filtered = max(0, s.Read-c.toSink-(c.deadLetters-c.sinkDeadLetters))
}
