package processors_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// memSink buffers writes; Flush makes them durable. It records what it
// received so tests can check what each sink saw.
type memSink struct {
	name string
	mu   sync.Mutex
	got  []string // data of durable messages
	open []*memShard
}

type memShard struct {
	s       *memSink
	pending []*processors.Message
	durable checkpoint.Position
	failOn  string // data that fails permanently at flush
	dl      processors.DeadLetterer
}

func (s *memSink) Name() string { return s.name }
func (s *memSink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	ms := &memShard{s: s, dl: dl}
	s.open = append(s.open, ms)
	return ms, nil
}
func (s *memSink) Close(context.Context) error { return nil }

func (m *memShard) Write(ctx context.Context, msgs []*processors.Message) error {
	m.pending = append(m.pending, msgs...)
	return nil
}
func (m *memShard) Flush(ctx context.Context) error {
	var bad []*processors.Message
	for _, msg := range m.pending {
		if string(msg.Record.Data) == m.failOn {
			msg.Fail(m.s.name, 1, errors.New("mapping conflict"))
			bad = append(bad, msg)
			continue
		}
		m.s.mu.Lock()
		m.s.got = append(m.s.got, string(msg.Record.Data))
		m.s.mu.Unlock()
	}
	if len(bad) > 0 {
		if err := m.dl.DeadLetter(ctx, bad); err != nil {
			return err
		}
	}
	if len(m.pending) > 0 {
		m.durable = m.pending[len(m.pending)-1].Position()
	}
	m.pending = nil
	return nil
}
func (m *memShard) Durable() checkpoint.Position { return m.durable }
func (m *memShard) Close() error                 { return nil }

type memDL struct {
	mu  sync.Mutex
	got []string
}

func (d *memDL) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		d.got = append(d.got, fmt.Sprintf("%s@%s: %v", m.Record.Data, m.Failed().Stage, m.Failed().Err))
	}
	return nil
}

func recs(from, n int) []worker.Record {
	out := make([]worker.Record, n)
	for i := range out {
		seq := strconv.Itoa(1000 + from + i)
		out[i] = worker.Record{ShardID: "s", SequenceNumber: seq, Data: []byte(strconv.Itoa(from + i))}
	}
	return out
}

func pos(seq int) checkpoint.Position { return checkpoint.Position{Sequence: strconv.Itoa(1000 + seq)} }

func TestPipelineDurableIsWhatEverySinkWrote(t *testing.T) {
	ctx := context.Background()
	a, b, dl := &memSink{name: "a"}, &memSink{name: "b"}, &memDL{}
	// drop even numbers; fail "3" as poison
	filter := processors.ProcessorFunc(func(ctx context.Context, batch []*processors.Message) ([]*processors.Message, error) {
		var out []*processors.Message
		for _, m := range batch {
			n, _ := strconv.Atoi(string(m.Record.Data))
			switch {
			case n == 3:
				m.Fail("filter", 1, errors.New("poison"))
				out = append(out, m) // returned failed: the pipeline must still not pass it on
			case n == 9:
				m.Fail("filter", 1, errors.New("poison left out")) // not returned: still dead-lettered, once
			case n%2 == 0:
			default:
				out = append(out, m)
			}
		}
		return out, nil
	})
	p, err := processors.NewPipeline([]processors.Stage{{Name: "filter", Processor: filter}}, []processors.Sink{a, b}, dl, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	start := checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}
	sp, err := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Process(ctx, recs(0, 6)); err != nil { // 0..5
		t.Fatal(err)
	}
	if d := sp.Durable(); d.Position.Sequence != checkpoint.TrimHorizon {
		t.Fatalf("nothing flushed yet, durable = %v, want the start", d.Position)
	}
	// Flush only sink a: b still holds the checkpoint back.
	if err := a.open[0].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := sp.Durable(); d.Position.Sequence != checkpoint.TrimHorizon || d.Sinks["a"] != pos(5) {
		t.Fatalf("durable %+v: want start position with a's progress at 1005", d)
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Position != pos(5) {
		t.Fatalf("after flush: %v, want 1005", cp.Position)
	}
	// A batch that is entirely filtered still advances the checkpoint.
	if err := sp.Process(ctx, []worker.Record{recs(6, 1)[0]}); err != nil {
		t.Fatal(err)
	}
	if d := sp.Durable(); d.Position != pos(6) {
		t.Fatalf("filtered batch: durable %v, want 1006", d.Position)
	}
	if fmt.Sprint(a.got) != "[1 5]" || fmt.Sprint(b.got) != "[1 5]" {
		t.Fatalf("sinks got a=%v b=%v, want [1 5] each", a.got, b.got)
	}
	if err := sp.Process(ctx, recs(9, 1)); err != nil {
		t.Fatal(err)
	}
	if len(dl.got) != 2 || dl.got[0] != "3@filter: poison" || dl.got[1] != "9@filter: poison left out" {
		t.Fatalf("dead letters %v", dl.got)
	}
}

func TestPipelineSinkFailuresAreDeadLettered(t *testing.T) {
	ctx := context.Background()
	a, dl := &memSink{name: "a"}, &memDL{}
	p, _ := processors.NewPipeline(nil, []processors.Sink{a}, dl, zap.NewNop())
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	a.open[0].failOn = "2"
	if err := sp.Process(ctx, recs(0, 4)); err != nil {
		t.Fatal(err)
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Position != pos(3) || fmt.Sprint(a.got) != "[0 1 3]" || len(dl.got) != 1 {
		t.Fatalf("checkpoint %v, sink %v, dead letters %v", cp.Position, a.got, dl.got)
	}
}

// kindDL records, per record data, whether its failure is a sink's.
type kindDL struct {
	mu   sync.Mutex
	sink map[string]bool
}

func (d *kindDL) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		d.sink[string(m.Record.Data)] = m.Failed().Sink
	}
	return nil
}

// A dead letter says whether a sink or a processor gave up on its record
// (deadletter.Line.StageKind), so that a replay need not guess from the
// configured sink names: whatever a sink dead-letters is marked a sink's,
// also when the sink used Fail instead of FailedCopy, and a processor's
// failure is not.
func TestPipelineMarksSinkFailures(t *testing.T) {
	ctx := context.Background()
	a, dl := &memSink{name: "a"}, &kindDL{sink: map[string]bool{}}
	poison := processors.ProcessorFunc(func(_ context.Context, b []*processors.Message) ([]*processors.Message, error) {
		for _, m := range b {
			if string(m.Record.Data) == "1" {
				m.Fail("parse", 1, errors.New("bad input"))
			}
		}
		return b, nil
	})
	p, _ := processors.NewPipeline([]processors.Stage{{Name: "parse", Processor: poison}}, []processors.Sink{a}, dl, zap.NewNop())
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	a.open[0].failOn = "2" // memShard marks it with Fail, not FailedCopy
	if err := sp.Process(ctx, recs(0, 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if sink, ok := dl.sink["2"]; !ok || !sink {
		t.Errorf("the sink's dead letter: marked a sink's = %v (stored %v), want true", sink, ok)
	}
	if sink, ok := dl.sink["1"]; !ok || sink {
		t.Errorf("the processor's dead letter: marked a sink's = %v (stored %v), want false", sink, ok)
	}
	if m := (&processors.Message{}).FailedCopy("s3", 1, errors.New("x")); !m.Failed().Sink {
		t.Error("FailedCopy must mark a sink's failure")
	}
}

func TestPipelineSkipsWhatASinkAlreadyHas(t *testing.T) {
	ctx := context.Background()
	a, b, dl := &memSink{name: "a"}, &memSink{name: "b"}, &memDL{}
	p, _ := processors.NewPipeline(nil, []processors.Sink{a, b}, dl, zap.NewNop())
	// The last run checkpointed 1001, but sink b had already written up to 1003.
	start := checkpoint.Checkpoint{Position: pos(1), Sinks: map[string]checkpoint.Position{"b": pos(3)}}
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: start})
	if err := sp.Process(ctx, recs(2, 4)); err != nil { // 2..5
		t.Fatal(err)
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.got) != "[2 3 4 5]" || fmt.Sprint(b.got) != "[4 5]" {
		t.Fatalf("a=%v b=%v: b must not get what it already has", a.got, b.got)
	}
	if cp.Position != pos(5) {
		t.Fatalf("checkpoint %v", cp.Position)
	}
}

func TestPipelineRetriesABatchErrorAndNeverSkips(t *testing.T) {
	ctx := context.Background()
	a, dl := &memSink{name: "a"}, &memDL{}
	calls := 0
	flaky := processors.ProcessorFunc(func(ctx context.Context, batch []*processors.Message) ([]*processors.Message, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("geo service unavailable")
		}
		return batch, nil
	})
	p, _ := processors.NewPipeline([]processors.Stage{{Name: "flaky", Processor: flaky}}, []processors.Sink{a}, dl, zap.NewNop())
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	if err := sp.Process(ctx, recs(0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || fmt.Sprint(a.got) != "[0 1]" || len(dl.got) != 0 {
		t.Fatalf("calls %d, sink %v, dead letters %v", calls, a.got, dl.got)
	}
	// A cancelled context stops the retries with an error (no checkpoint).
	calls = 0
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := sp.Process(cctx, recs(2, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("process with cancelled ctx: %v", err)
	}
}

// TestPipelineStageRetryWaits pins the backoff of a failing stage: from
// 100ms doubling to 10s, each wait drawn in [d/2, 3d/2).
func TestPipelineStageRetryWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		calls := 0
		flaky := processors.ProcessorFunc(func(ctx context.Context, batch []*processors.Message) ([]*processors.Message, error) {
			calls++
			if calls <= 8 {
				return nil, errors.New("geo service unavailable")
			}
			return batch, nil
		})
		p, _ := processors.NewPipeline([]processors.Stage{{Name: "flaky", Processor: flaky}}, []processors.Sink{&memSink{name: "a"}}, &memDL{}, zap.NewNop())
		sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
		start := time.Now()
		if err := sp.Process(ctx, recs(0, 1)); err != nil {
			t.Fatal(err)
		}
		// 100+200+400+800+1600+3200+6400+10000 ms = 22.7s before jitter.
		lo, hi := 22700*time.Millisecond/2, 22700*time.Millisecond*3/2
		if d := time.Since(start); d < lo || d >= hi {
			t.Fatalf("8 retries took %v, want within [%v, %v)", d, lo, hi)
		}
	})
}

func TestPipelineMalformedAggregateIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	a, dl := &memSink{name: "a"}, &memDL{}
	p, _ := processors.NewPipeline(nil, []processors.Sink{a}, dl, zap.NewNop())
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	rs := recs(0, 2)
	rs[0].Malformed = errors.New("kpl: malformed aggregate")
	if err := sp.Process(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.got) != "[1]" || len(dl.got) != 1 {
		t.Fatalf("sink %v, dead letters %v", a.got, dl.got)
	}
}

func TestNewPipelineNeedsSinksAndDeadLetter(t *testing.T) {
	if _, err := processors.NewPipeline(nil, nil, &memDL{}, zap.NewNop()); err == nil {
		t.Error("no sinks accepted")
	}
	if _, err := processors.NewPipeline(nil, []processors.Sink{&memSink{name: "a"}}, nil, zap.NewNop()); err == nil {
		t.Error("no dead-letter accepted")
	}
	if _, err := processors.NewPipeline(nil, []processors.Sink{&memSink{name: "a"}, &memSink{name: "a"}}, &memDL{}, zap.NewNop()); err == nil {
		t.Error("duplicate sink names accepted")
	}
}
