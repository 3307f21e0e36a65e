package processors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// parseAt is a processor that parses "<RFC 3339 time>" into an event with
// that event time.
var parseAt = processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		t, err := time.Parse(time.RFC3339, string(m.Record.Data))
		if err != nil {
			m.Fail("parse", 1, err)
			continue
		}
		m.Event = event.Event{EventTime: t.UTC(), EventID: string(m.Record.Data), EventType: event.TypeView, Source: event.SourceApp}
		m.Parsed = true
	}
	return batch, nil
})

// Defect 1: an event far from its arrival (year 1, year 9999, a month
// old, a week ahead) must not reach a sink, which would create an index or
// partition for its date; it is dead-lettered with a reason naming the
// window. Events inside the window pass.
func TestEventTimeOutsideTheWindowIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	arrival := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	a, dl := &memSink{name: "a"}, &memDL{}
	p, err := processors.NewPipeline([]processors.Stage{{Name: "parse", Processor: parseAt}}, []processors.Sink{a}, dl, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	times := []string{
		"2026-12-04T11:00:00Z", // an hour before arrival: in
		"0001-01-01T00:00:01Z", // year 1: out
		"9999-12-31T23:59:59Z", // year 9999: out
		"2026-11-04T11:59:59Z", // 30 days and a second before: out
		"2026-11-04T12:00:01Z", // just under 30 days before: in
		"2026-12-05T12:00:01Z", // a day and a second ahead: out
		"2026-12-05T11:00:00Z", // 23 hours ahead (a fast producer clock): in
	}
	rs := make([]worker.Record, len(times))
	for i, ts := range times {
		rs[i] = worker.Record{ShardID: "s", SequenceNumber: fmt.Sprint(1000 + i), Data: []byte(ts), ArrivalTime: arrival}
	}
	if err := sp.Process(ctx, rs); err != nil {
		t.Fatal(err)
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[2026-12-04T11:00:00Z 2026-11-04T12:00:01Z 2026-12-05T11:00:00Z]"; fmt.Sprint(a.got) != want {
		t.Errorf("sink got %v, want %s", a.got, want)
	}
	if len(dl.got) != 4 {
		t.Fatalf("dead letters %v, want the 4 events outside the window", dl.got)
	}
	for _, d := range dl.got {
		if !strings.Contains(d, "@event_time: ") || !strings.Contains(d, "is outside the accepted window: more than") || !strings.Contains(d, "pipeline.event_time.max_") {
			t.Errorf("dead letter %q: want stage event_time and a reason naming the window and the setting", d)
		}
	}
	if cp.Position.Sequence != "1006" {
		t.Errorf("checkpoint %v: dead-lettered events must not hold it back", cp.Position)
	}
}

func TestEventTimeWindowFromConfig(t *testing.T) {
	parse := func(src string) (processors.Spec, error) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return processors.ParseSpec(doc.Content[0])
	}
	base := "sinks: [{type: file}]\ndead_letter: {type: file}\n"
	spec, err := parse(base + "event_time: {max_past: 400d, max_future: 36h}\n")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(spec.EventTime.MaxPast) != 400*24*time.Hour || time.Duration(spec.EventTime.MaxFuture) != 36*time.Hour {
		t.Fatalf("window %+v", spec.EventTime)
	}
	for src, want := range map[string]string{
		base + "event_time: {max_past: soon}\n":  "not a duration",
		base + "event_time: {max_ahead: 1d}\n":   "max_ahead",
		base + "event_time: {max_future: -1h}\n": "pipeline.event_time.max_future: -1h0m0s is negative",
	} {
		if _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", src, err, want)
		}
	}
}

// redactor removes the "secret" part of the raw data and counts its calls.
type redactor struct{ calls int }

func (r *redactor) Process(_ context.Context, b []*processors.Message) ([]*processors.Message, error) {
	return b, nil
}

func (r *redactor) Redact(m *processors.Message) *processors.Message {
	r.calls++
	c := *m
	c.Record.Data = []byte(strings.ReplaceAll(string(m.Record.Data), "secret", "xxx"))
	c.Redacted = true
	return &c
}

// Dead letters pass through the pipeline's redactors, whoever gave up on
// the record (a processor before the redactor ran, or a sink after it),
// and the message the sinks share is never changed.
func TestDeadLettersAreRedacted(t *testing.T) {
	ctx := context.Background()
	a, dl := &memSink{name: "a"}, &memDL{}
	red := &redactor{}
	poison := processors.ProcessorFunc(func(_ context.Context, b []*processors.Message) ([]*processors.Message, error) {
		for _, m := range b {
			if strings.HasPrefix(string(m.Record.Data), "bad") {
				m.Fail("poison", 1, errors.New("bad input"))
			}
		}
		return b, nil
	})
	p, _ := processors.NewPipeline([]processors.Stage{{Name: "poison", Processor: poison}, {Name: "anon", Processor: red}}, []processors.Sink{a}, dl, zap.NewNop())
	sp, _ := p.Factory()(ctx, worker.Shard{ShardID: "s", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	a.open[0].failOn = "ok secret"
	rs := []worker.Record{{ShardID: "s", SequenceNumber: "1", Data: []byte("bad secret")}, {ShardID: "s", SequenceNumber: "2", Data: []byte("ok secret")}}
	if err := sp.Process(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dl.got) != "[bad xxx@poison: bad input ok xxx@a: mapping conflict]" {
		t.Fatalf("dead letters %v, want both redacted", dl.got)
	}
	if red.calls < 2 {
		t.Errorf("redactor called %d times, want once per dead letter at least", red.calls)
	}
}

// stateSink is a sink that reports a fixed SinkState.
type stateSink struct {
	memSink
	st processors.SinkState
}

func (s *stateSink) State() processors.SinkState { return s.st }

func TestReadyReportsSinksThatCannotWrite(t *testing.T) {
	s := &stateSink{memSink: memSink{name: "search"}}
	p, _ := processors.NewPipeline(nil, []processors.Sink{s, &memSink{name: "plain"}}, &memDL{}, zap.NewNop())
	if err := p.Ready(); err != nil {
		t.Fatalf("healthy sinks: %v", err)
	}
	s.st = processors.SinkState{Stalled: 1, StalledSince: time.Now().Add(-time.Second), LastError: "429"}
	if err := p.Ready(); err != nil {
		t.Fatalf("a short transient stall must not make the worker unready: %v", err)
	}
	s.st.StalledSince = time.Now().Add(-processors.StallUnreadyAfter - time.Second)
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "sink search failing for") {
		t.Fatalf("a long stall: %v", err)
	}
	s.st = processors.SinkState{Stalled: 2, CannotWrite: 1, StalledSince: time.Now(), LastError: "validation_exception: this action would add [2] total shards"}
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "sink search cannot write (1 shards waiting): validation_exception") {
		t.Fatalf("cannot write: %v", err)
	}
	if got := p.SinkStates(); len(got) != 1 || got["search"].CannotWrite != 1 {
		t.Fatalf("states %+v", got)
	}
}

// stateDL is a dead-letter destination that reports a fixed SinkState.
type stateDL struct {
	memDL
	st processors.SinkState
}

func (d *stateDL) State() processors.SinkState { return d.st }

// A dead-letter store that cannot write holds its shards like a sink that
// cannot write: readiness and the metrics say so.
func TestReadyReportsDeadLetterStoreThatCannotWrite(t *testing.T) {
	dl := &stateDL{}
	p, _ := processors.NewPipeline(nil, []processors.Sink{&memSink{name: "plain"}}, dl, zap.NewNop())
	if err := p.Ready(); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	dl.st = processors.SinkState{Stalled: 1, CannotWrite: 1, StalledSince: time.Now(), LastError: "deadletter: put s3://dl/x: AccessDenied"}
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "sink dead_letter cannot write (1 shards waiting): deadletter: put") {
		t.Fatalf("cannot write: %v", err)
	}
	if got := p.SinkStates(); got[processors.DeadLetterState].CannotWrite != 1 {
		t.Fatalf("states %+v", got)
	}
}

func TestStalls(t *testing.T) {
	var s processors.Stalls
	if !s.Failed("a", errors.New("503"), false) {
		t.Error("first failure is news")
	}
	if s.Failed("a", errors.New("503 again"), false) {
		t.Error("a repeated transient failure is not news")
	}
	if !s.Failed("a", errors.New("index closed"), true) {
		t.Error("turning into cannot-write is news")
	}
	s.Failed("b", errors.New("429"), false)
	var st processors.SinkState
	s.Fill(&st)
	if st.Stalled != 2 || st.CannotWrite != 1 || st.Retries != 4 || st.CannotWriteErrors != 1 || st.LastError != "429" {
		t.Fatalf("state %+v", st)
	}
	if s.Recovered("a") == 0 || s.Recovered("a") != 0 {
		t.Error("Recovered reports the stall once")
	}
	s.Forget("b")
	st = processors.SinkState{}
	s.Fill(&st)
	if st.Stalled != 0 || !st.StalledSince.IsZero() {
		t.Fatalf("after recovery %+v", st)
	}
}

func TestMemoryBudget(t *testing.T) {
	b := processors.NewMemoryBudget(100)
	if ok, _ := b.Acquire(60); !ok {
		t.Fatal("60 of 100")
	}
	ok, freed := b.Acquire(50)
	if ok {
		t.Fatal("110 of 100 granted")
	}
	seen, squeezed := b.Squeezes()
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(context.Background(), freed) }()
	select {
	case <-squeezed:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter did not squeeze the holders")
	}
	if n, _ := b.Squeezes(); n != seen+1 {
		t.Fatalf("squeezes %d, want %d", n, seen+1)
	}
	select {
	case <-waited:
		t.Fatal("Wait returned before memory was released")
	case <-time.After(20 * time.Millisecond):
	}
	b.Release(60)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Acquire(150); !ok {
		t.Fatal("a record larger than the budget must pass when nothing is held")
	}
	var st processors.SinkState
	b.Fill(&st)
	if st.BufferedBytes != 150 || st.BufferLimit != 100 || st.BufferWaits != 1 {
		t.Fatalf("state %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, freed = b.Acquire(1)
	if err := b.Wait(ctx, freed); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled ctx: %v", err)
	}
	var none *processors.MemoryBudget
	if ok, _ := none.Acquire(1 << 40); !ok {
		t.Fatal("a nil budget is unlimited")
	}
}
