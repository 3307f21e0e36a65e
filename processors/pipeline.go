package processors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/worker"
)

// Stage is a named processor in a pipeline.
type Stage struct {
	Name      string
	Processor Processor
}

// Pipeline is a chain of processors and a set of sinks, shared by every
// shard of a worker. Create with NewPipeline; Factory gives the worker its
// per-shard processors. Safe for concurrent use.
type Pipeline struct {
	stages    []Stage
	sinks     []Sink
	dl        DeadLetterer
	redactors []Redactor // the stages that remove personal data, in order
	window    EventTimeWindow
	log       *zap.Logger
	obs       Observer // set before use; never nil after NewPipeline
}

// NewPipeline returns a pipeline. At least one sink and a dead-letterer
// are required: without a dead-letter destination a poison record could
// only be dropped or block its shard.
func NewPipeline(stages []Stage, sinks []Sink, dl DeadLetterer, log *zap.Logger) (*Pipeline, error) {
	if len(sinks) == 0 {
		return nil, errors.New("processors: a pipeline needs at least one sink")
	}
	if dl == nil {
		return nil, errors.New("processors: a pipeline needs a dead-letter destination")
	}
	seen := map[string]bool{}
	for _, s := range sinks {
		if seen[s.Name()] {
			return nil, fmt.Errorf("processors: two sinks named %q; names key the per-sink checkpoints and must differ", s.Name())
		}
		seen[s.Name()] = true
	}
	p := &Pipeline{stages: stages, sinks: sinks, dl: dl, log: log, obs: nopObserver{}, window: EventTimeWindow{}.withDefaults()}
	for _, st := range stages {
		if r, ok := st.Processor.(Redactor); ok {
			p.redactors = append(p.redactors, r)
		}
	}
	return p, nil
}

// SetEventTimeWindow sets the accepted event-time window (zero fields take
// the defaults; see EventTimeWindow). Call before Factory is used. The
// error names a negative bound.
func (p *Pipeline) SetEventTimeWindow(w EventTimeWindow) error {
	if err := w.Validate(); err != nil {
		return err
	}
	p.window = w.withDefaults()
	return nil
}

// deadLetterer is the destination given to sinks and used for processor
// failures: personal data removed by the pipeline's Redactors, then
// stored, then counted.
func (p *Pipeline) deadLetterer() DeadLetterer {
	var dl DeadLetterer = p.dl
	if len(p.redactors) > 0 {
		dl = redactingDL{next: dl, redactors: p.redactors}
	}
	return observedDL{dl, p.obs}
}

// Close closes every sink, and every stage that has a Close method (a
// geoip database, say).
func (p *Pipeline) Close(ctx context.Context) error {
	var errs []error
	for _, st := range p.stages {
		if c, ok := st.Processor.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close processor %s: %w", st.Name, err))
			}
		}
	}
	for _, s := range p.sinks {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sink %s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Factory returns the worker.ProcessorFactory that runs this pipeline for
// each shard.
func (p *Pipeline) Factory() worker.ProcessorFactory {
	return func(ctx context.Context, shard worker.Shard) (worker.ShardProcessor, error) {
		sp := &shardPipeline{p: p, shard: shard, last: shard.Start.Position, log: p.log.With(zap.String("shard_id", shard.ShardID))}
		for _, s := range p.sinks {
			ss, err := s.Open(ctx, shard, sinkDL{p.deadLetterer()})
			if err != nil {
				sp.Close(worker.CloseFailed)
				return nil, fmt.Errorf("open sink %s for %s: %w", s.Name(), shard.ShardID, err)
			}
			sp.sinks = append(sp.sinks, sinkState{name: s.Name(), sink: ss, start: shard.Start.Sinks[s.Name()]})
		}
		return sp, nil
	}
}

type sinkState struct {
	name  string
	sink  ShardSink
	start checkpoint.Position // sink's own progress at open: skip what it already has
	given checkpoint.Position // last position handed to the sink
}

// shardPipeline runs one shard; the worker calls it from one goroutine.
type shardPipeline struct {
	p     *Pipeline
	shard worker.Shard
	sinks []sinkState
	last  checkpoint.Position // last record position processed
	log   *zap.Logger
}

// Process runs the batch through every stage, dead-letters failures, and
// hands the survivors to every sink.
func (sp *shardPipeline) Process(ctx context.Context, recs []worker.Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]*Message, len(recs))
	for i := range recs {
		msgs[i] = &Message{Record: recs[i]}
		if recs[i].Malformed != nil {
			msgs[i].Fail("deaggregate", 1, recs[i].Malformed)
		}
	}
	msgs, err := sp.deadLetterFailed(ctx, msgs)
	if err != nil {
		return err
	}
	for _, st := range sp.p.stages {
		if len(msgs) == 0 {
			break
		}
		began := time.Now()
		in := len(msgs)
		out, err := sp.runStage(ctx, st, msgs)
		if err != nil {
			return err
		}
		sp.p.obs.StageDone(st.Name, in, len(out), time.Since(began))
		// A processor may mark a message failed and leave it out of its
		// result: collect failures from the input too, each once.
		returned := make(map[*Message]bool, len(out))
		for _, m := range out {
			returned[m] = true
		}
		for _, m := range msgs {
			if m.Failed() != nil && !returned[m] {
				out = append(out, m)
			}
		}
		if msgs, err = sp.deadLetterFailed(ctx, out); err != nil {
			return err
		}
	}
	// Sinks name indices and partitions by event time: an event far from
	// its arrival is dead-lettered here, before any sink sees it.
	window := false
	for _, m := range msgs {
		if !m.Parsed {
			continue // sinks dead-letter unparsed messages themselves
		}
		arrival := m.Record.ArrivalTime
		if arrival.IsZero() {
			arrival = time.Now()
		}
		if err := sp.p.window.check(m.Event.EventTime, arrival); err != nil {
			m.Fail(StageEventTime, 1, err)
			window = true
		}
	}
	if window {
		if msgs, err = sp.deadLetterFailed(ctx, msgs); err != nil {
			return err
		}
	}
	for i := range sp.sinks {
		s := &sp.sinks[i]
		sub := msgs
		if !s.start.IsZero() && !s.start.IsSentinel() {
			sub = sub[:0:0]
			for _, m := range msgs {
				if checkpoint.Less(s.start, m.Position()) {
					sub = append(sub, m)
				}
			}
		}
		if len(sub) == 0 {
			continue
		}
		// ctx is the lease context: past the fence time (or once the
		// lease is lost) no write may begin.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sink %s: lease context: %w", s.name, err)
		}
		began := time.Now()
		if err := s.sink.Write(ctx, sub); err != nil {
			return fmt.Errorf("sink %s: %w", s.name, err)
		}
		var size int64
		for _, m := range sub {
			size += int64(len(m.Record.Data))
		}
		sp.p.obs.SinkWrite(s.name, len(sub), size, time.Since(began))
		s.given = sub[len(sub)-1].Position()
	}
	sp.last = recs[len(recs)-1].Position()
	return nil
}

// runStage calls a processor, retrying a whole-batch error with backoff
// until ctx ends: a retryable failure is never skipped.
func (sp *shardPipeline) runStage(ctx context.Context, st Stage, msgs []*Message) ([]*Message, error) {
	var out []*Message
	err := stageRetry.Retry(ctx, func(attempt int) error {
		var err error
		out, err = st.Processor.Process(ctx, msgs)
		if IsPermanent(err) {
			// The processor says the whole batch is bad: dead-letter it.
			for _, m := range msgs {
				if m.Failed() == nil {
					m.Fail(st.Name, attempt, err)
				}
			}
			out = msgs
			return nil
		}
		return err
	}, func(attempt int, err error, wait time.Duration) error {
		sp.log.Warn("processor failed; retrying the batch", zap.String("stage", st.Name), zap.Int("attempt", attempt), zap.Error(err))
		sp.p.obs.StageRetry(st.Name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stageRetry is the backoff between tries of a failed processor: from
// 100ms doubling to 10s, each wait drawn in [d/2, 3d/2).
var stageRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: backoff.Spread}

// deadLetterFailed sends failed messages to the dead-letterer (durably)
// and returns the rest.
func (sp *shardPipeline) deadLetterFailed(ctx context.Context, msgs []*Message) ([]*Message, error) {
	var failed []*Message
	ok := msgs[:0:0]
	for _, m := range msgs {
		if m.Failed() != nil {
			failed = append(failed, m)
		} else {
			ok = append(ok, m)
		}
	}
	if len(failed) == 0 {
		return msgs, nil
	}
	for _, m := range failed {
		f := sp.p.redact(m).Failed() // the reason may quote the record: no raw address in the log either
		sp.log.Error("record dead-lettered", zap.String("stage", f.Stage), zap.String("sequence_number", m.Record.SequenceNumber),
			zap.Int64("sub_sequence_number", m.Record.SubSequenceNumber), zap.Error(f.Err))
	}
	if err := sp.p.deadLetterer().DeadLetter(ctx, failed); err != nil {
		return nil, fmt.Errorf("dead-letter %d records: %w", len(failed), err)
	}
	return ok, nil
}

// Flush flushes every sink and returns what is durable.
func (sp *shardPipeline) Flush(ctx context.Context) (checkpoint.Checkpoint, error) {
	for _, s := range sp.sinks {
		if err := s.sink.Flush(ctx); err != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("flush sink %s: %w", s.name, err)
		}
	}
	return sp.Durable(), nil
}

// Durable is the position every sink has passed: a sink with nothing
// outstanding has passed everything processed (including filtered and
// dead-lettered records); a sink with outstanding messages holds the
// checkpoint at its own durable position.
func (sp *shardPipeline) Durable() checkpoint.Checkpoint {
	pos := sp.last
	progress := make(map[string]checkpoint.Position, len(sp.sinks))
	for _, s := range sp.sinks {
		d := s.sink.Durable()
		if s.given.IsZero() || (!d.IsZero() && !checkpoint.Less(d, s.given)) {
			progress[s.name] = maxPos(d, s.start)
			continue // nothing outstanding
		}
		held := d
		if held.IsZero() {
			held = sp.shard.Start.Position // nothing durable yet in this lease
		}
		if !held.IsZero() {
			progress[s.name] = maxPos(held, s.start)
		}
		if pos.IsSentinel() || held.IsSentinel() || checkpoint.Less(held, pos) {
			pos = held
		}
	}
	for name, p := range progress {
		if p.IsZero() || p.IsSentinel() {
			delete(progress, name)
		}
	}
	if len(progress) == 0 {
		progress = nil
	}
	return checkpoint.Checkpoint{Position: pos, Sinks: progress}
}

func maxPos(a, b checkpoint.Position) checkpoint.Position {
	switch {
	case a.IsZero() || a.IsSentinel():
		return b
	case b.IsZero() || b.IsSentinel():
		return a
	case checkpoint.Less(a, b):
		return b
	}
	return a
}

// Close closes every shard sink.
func (sp *shardPipeline) Close(worker.CloseReason) error {
	var errs []error
	for _, s := range sp.sinks {
		if err := s.sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sink %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// observedDL counts dead letters by stage, for sinks' and processors'
// failures alike, once they are durably stored.
type observedDL struct {
	dl  DeadLetterer
	obs Observer
}

func (o observedDL) DeadLetter(ctx context.Context, msgs []*Message) error {
	if err := o.dl.DeadLetter(ctx, msgs); err != nil {
		return err
	}
	byStage := map[string]int{}
	for _, m := range msgs {
		if f := m.Failed(); f != nil {
			byStage[f.Stage]++
		}
	}
	for stage, n := range byStage {
		o.obs.DeadLettered(stage, n)
	}
	return nil
}

// sinkDL is the dead-letter destination a sink is given: it marks what
// the sink gives up on as a sink's failure (Failure.Sink), also when the
// sink marked it with Fail rather than FailedCopy, so that a replay knows
// the other sinks have the record. The messages it is given are the
// sink's copies; a message it must mark is copied again.
type sinkDL struct{ next DeadLetterer }

func (s sinkDL) DeadLetter(ctx context.Context, msgs []*Message) error {
	out := msgs
	for i, m := range msgs {
		f := m.Failed()
		if f == nil || f.Sink {
			continue
		}
		if &out[0] == &msgs[0] {
			out = append([]*Message(nil), msgs...)
		}
		c := *m
		c.FailWith(Failure{Stage: f.Stage, Err: f.Err, Attempts: f.Attempts, Sink: true})
		out[i] = &c
	}
	return s.next.DeadLetter(ctx, out)
}

// redactingDL passes each message through the pipeline's Redactors before
// storing it, so a dead letter holds no personal data the sinks would not
// hold.
type redactingDL struct {
	next      DeadLetterer
	redactors []Redactor
}

func (r redactingDL) DeadLetter(ctx context.Context, msgs []*Message) error {
	out := make([]*Message, len(msgs))
	for i, m := range msgs {
		out[i] = redact(r.redactors, m)
	}
	return r.next.DeadLetter(ctx, out)
}

func redact(redactors []Redactor, m *Message) *Message {
	for _, red := range redactors {
		m = red.Redact(m)
	}
	return m
}

// redact returns m as the pipeline stores it in the dead-letter store.
func (p *Pipeline) redact(m *Message) *Message { return redact(p.redactors, m) }
