package redrive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// watchType is the dead-letter type a Pipeline target registers to see
// which records fail again; it stores them through the configured
// destination.
const watchType = "redrive-watch"

// Pipeline is the Target that sends dead letters straight through the
// worker's pipeline (the `pipeline` section of its config), without the
// stream:
//
//   - a dead letter of a sink that carries the event the pipeline had
//     built is written, as that event, to that sink alone — the other
//     sinks have it, and its processing is not redone;
//   - one of a sink without the event runs through the processors and
//     then that sink alone;
//   - one of a processor (parse, deaggregate, the event-time window, ...)
//     runs through every processor and every sink, as the worker would
//     have run it, with the record's original arrival time (the window is
//     judged against it).
//
// Whether a dead letter is a sink's is its stage_kind (Letter.IsSink); a
// dead letter written before stage_kind existed is a sink's when the
// config has a sink of its stage's name. A sink's dead letter whose sink
// the config no longer has is refused (ErrRefused).
//
// Records keep their stream, shard and sequence numbers, so sinks derive
// the same document ids, archive keys and item keys as the first time. A
// record that fails again is dead-lettered again, through the configured
// destination, with its new reason, and its outcome says why.
type Pipeline struct {
	reg  *processors.Registry
	spec processors.Spec
	deps processors.Deps
	log  *zap.Logger
	dl   processors.DeadLetterer // the configured destination

	mu     sync.Mutex
	failed map[string]error // by position key: records dead-lettered again in the current batch

	chains map[string]*processors.Pipeline // by sink name; "" for every sink
	sinks  map[string]processors.Sink      // built for sink-only replays
}

// NewPipeline prepares the target from a pipeline spec and the registry
// and dependencies the worker builds it with. It registers a dead-letter
// type on reg (so call it once per registry), builds the configured
// dead-letter destination, and builds processors and sinks when first
// needed.
func NewPipeline(ctx context.Context, reg *processors.Registry, spec processors.Spec, deps processors.Deps, log *zap.Logger) (*Pipeline, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ctor, err := reg.DeadLetter(spec.DeadLetter.Type)
	if err != nil {
		return nil, fmt.Errorf("pipeline.dead_letter: %w", err)
	}
	dl, err := ctor(ctx, spec.DeadLetter.Options, deps)
	if err != nil {
		return nil, fmt.Errorf("pipeline.dead_letter (%s): %w", spec.DeadLetter.Type, err)
	}
	t := &Pipeline{reg: reg, spec: spec, deps: deps, log: log, dl: dl, failed: map[string]error{},
		chains: map[string]*processors.Pipeline{}, sinks: map[string]processors.Sink{}}
	reg.RegisterDeadLetter(watchType, func(context.Context, processors.Options, processors.Deps) (processors.DeadLetterer, error) {
		return watch{t}, nil
	})
	return t, nil
}

// SinkNames returns the names of the spec's sinks: the stages whose dead
// letters are a sink's.
func SinkNames(spec processors.Spec) []string {
	var out []string
	for _, s := range spec.Sinks {
		out = append(out, s.Name)
	}
	return out
}

// watch is the dead-letter destination of the replay's pipelines: it
// notes each record that failed again, then stores it as configured.
type watch struct{ t *Pipeline }

func (w watch) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	w.t.mu.Lock()
	for _, m := range msgs {
		reason := errors.New("failed again")
		if f := m.Failed(); f != nil && f.Err != nil {
			reason = fmt.Errorf("failed again at %s: %w", f.Stage, f.Err)
		}
		w.t.failed[posKey(m.Record)] = reason
	}
	w.t.mu.Unlock()
	return w.t.dl.DeadLetter(ctx, msgs)
}

func posKey(r worker.Record) string {
	return r.StreamName + "/" + r.ShardID + "/" + r.SequenceNumber + "/" + strconv.FormatInt(r.SubSequenceNumber, 10)
}

// sinkSpec returns the spec of the sink named name, if the pipeline has one.
func (t *Pipeline) sinkSpec(name string) (processors.StageSpec, bool) {
	for _, s := range t.spec.Sinks {
		if s.Name == name {
			return s, true
		}
	}
	return processors.StageSpec{}, false
}

// chain returns the processors followed by the sink named only (every
// sink when only is ""), with the watching dead-letter destination.
func (t *Pipeline) chain(ctx context.Context, only string) (*processors.Pipeline, error) {
	if p, ok := t.chains[only]; ok {
		return p, nil
	}
	spec := t.spec
	spec.DeadLetter = processors.StageSpec{Type: watchType, Name: watchType, Options: processors.NewOptions("pipeline.dead_letter", watchType, nil)}
	if only != "" {
		s, _ := t.sinkSpec(only)
		spec.Sinks = []processors.StageSpec{s}
	}
	p, err := processors.Build(ctx, t.reg, spec, t.deps, t.log)
	if err != nil {
		return nil, err
	}
	t.chains[only] = p
	return p, nil
}

// sink returns the sink named name, built alone.
func (t *Pipeline) sink(ctx context.Context, name string) (processors.Sink, error) {
	if s, ok := t.sinks[name]; ok {
		return s, nil
	}
	st, _ := t.sinkSpec(name)
	ctor, err := t.reg.Sink(st.Type)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.Options.Path(), err)
	}
	s, err := ctor(ctx, st.Options, t.deps)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", st.Options.Path(), st.Type, err)
	}
	t.sinks[name] = s
	return s, nil
}

// Replay implements Target: it splits letters by route (see Pipeline),
// runs each route and collects who failed again.
func (t *Pipeline) Replay(ctx context.Context, letters []Letter) ([]error, error) {
	t.mu.Lock()
	clear(t.failed)
	t.mu.Unlock()
	type route struct {
		sink     string // "" every sink
		document bool   // the event alone, to the sink
	}
	byRoute := map[route][]Letter{}
	var order []route
	out := make([]error, len(letters))
	for i, l := range letters {
		r := route{}
		if l.IsSink(t.hasSink) {
			if !t.hasSink(l.Stage) {
				out[i] = fmt.Errorf("%w: dead letter of sink %s, which the pipeline config no longer has; configure a sink of that name to replay it", ErrRefused, l.Stage)
				continue
			}
			r.sink = l.Stage
			_, r.document = l.Document()
		}
		if _, ok := byRoute[r]; !ok {
			order = append(order, r)
		}
		byRoute[r] = append(byRoute[r], l)
	}
	for _, r := range order {
		var err error
		if r.document {
			err = t.toSink(ctx, r.sink, byRoute[r])
		} else {
			err = t.throughChain(ctx, r.sink, byRoute[r])
		}
		if err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, l := range letters {
		if out[i] == nil {
			out[i] = t.failed[posKey(l.Record())]
		}
	}
	return out, nil
}

// hasSink reports whether the pipeline config has a sink named name.
func (t *Pipeline) hasSink(name string) bool {
	_, ok := t.sinkSpec(name)
	return ok
}

// throughChain runs letters (one shard's) through the processors and the
// sink named only (every sink when ""), and flushes.
func (t *Pipeline) throughChain(ctx context.Context, only string, letters []Letter) error {
	p, err := t.chain(ctx, only)
	if err != nil {
		return err
	}
	shard := worker.Shard{StreamName: letters[0].Stream, ShardID: letters[0].ShardID, WorkerID: "redrive"}
	sp, err := p.Factory()(ctx, shard)
	if err != nil {
		return err
	}
	defer sp.Close(worker.CloseShutdown)
	recs := make([]worker.Record, len(letters))
	for i, l := range letters {
		recs[i] = l.Record()
	}
	if err := sp.Process(ctx, recs); err != nil {
		return err
	}
	_, err = sp.Flush(ctx)
	return err
}

// toSink writes the events the letters carry to the sink named name.
func (t *Pipeline) toSink(ctx context.Context, name string, letters []Letter) error {
	s, err := t.sink(ctx, name)
	if err != nil {
		return err
	}
	shard := worker.Shard{StreamName: letters[0].Stream, ShardID: letters[0].ShardID, WorkerID: "redrive"}
	ss, err := s.Open(ctx, shard, watch{t})
	if err != nil {
		return fmt.Errorf("open sink %s for %s: %w", name, shard.ShardID, err)
	}
	defer ss.Close()
	msgs := make([]*processors.Message, len(letters))
	for i, l := range letters {
		ev, _ := l.Document()
		msgs[i] = &processors.Message{Record: l.Record(), Event: ev, Parsed: true, Redacted: l.Redacted}
	}
	if err := ss.Write(ctx, msgs); err != nil {
		return fmt.Errorf("sink %s: %w", name, err)
	}
	if err := ss.Flush(ctx); err != nil {
		return fmt.Errorf("flush sink %s: %w", name, err)
	}
	return nil
}

// Close closes what the target built.
func (t *Pipeline) Close(ctx context.Context) error {
	var errs []error
	for _, p := range t.chains {
		errs = append(errs, p.Close(ctx))
	}
	for _, s := range t.sinks {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}
