package redrive_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/producer/producertest"
	"github.com/leasehold/leasehold/redrive"
	"github.com/leasehold/leasehold/worker"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func seq(n int) string { return fmt.Sprintf("49%054d", n) }

// testSinks are the stages the tests' dead letters name as sinks.
var testSinks = map[string]bool{"opensearch": true, "archive": true, "mem-a": true, "mem-b": true}

// msg is a failed message of shard, sequence n, at stage: a sink's
// failure when testSinks has the stage, else a processor's.
func msg(shard string, n int, stage, data string) *processors.Message {
	m := &processors.Message{Record: worker.Record{StreamName: "events", ShardID: shard, SequenceNumber: seq(n),
		PartitionKey: fmt.Sprintf("asset-%d", n%3), Data: []byte(data)}}
	m.FailWith(processors.Failure{Stage: stage, Attempts: 1, Err: fmt.Errorf("%s said no to %d", stage, n), Sink: testSinks[stage]})
	return m
}

func appData(n int) string {
	return fmt.Sprintf(`{"event_id":"ev-%d","event_type":"view","occurred_at":"2026-11-30T09:00:00Z","asset_id":"a-%d","tenant_id":"t"}`, n, n%3)
}

// writeLetters appends msgs to the file as dead letters failed at at, in
// the dead-letter destinations' format (deadletter.NewLine).
func writeLetters(t *testing.T, path string, at time.Time, msgs ...*processors.Message) {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		line, err := json.Marshal(deadletter.NewLine(m, at))
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// fakeTarget records what it is sent; fail decides a letter's outcome.
type fakeTarget struct {
	mu      sync.Mutex
	batches [][]redrive.Letter
	fail    func(redrive.Letter) error
}

func (f *fakeTarget) Replay(_ context.Context, ls []redrive.Letter) ([]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, ls)
	out := make([]error, len(ls))
	for i, l := range ls {
		if f.fail != nil {
			out[i] = f.fail(l)
		}
	}
	return out, nil
}

func (f *fakeTarget) Close(context.Context) error { return nil }

func (f *fakeTarget) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, b := range f.batches {
		for _, l := range b {
			out = append(out, l.ShardID+"/"+l.SequenceNumber[len(l.SequenceNumber)-3:]+"/"+l.Stage)
		}
	}
	return out
}

func TestListFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	writeLetters(t, path, t0, msg("shard-0", 1, "parse", "not json"), msg("shard-0", 2, "opensearch", appData(2)))
	writeLetters(t, path, t0.Add(2*time.Hour), msg("shard-1", 3, "opensearch", appData(3)), msg("shard-1", 4, "parse", "a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl"))
	if err := os.WriteFile(path+".tmp", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("this is not a dead letter\n")
	f.Close()

	store := redrive.NewFileStore(path)
	tests := []struct {
		name string
		f    redrive.Filter
		want []string
	}{
		{"all", redrive.Filter{}, []string{"1", "2", "3", "4"}},
		{"stage", redrive.Filter{Stages: []string{"opensearch"}}, []string{"2", "3"}},
		{"reason", redrive.Filter{Reason: regexp.MustCompile(`(?i)NO TO [34]`)}, []string{"3", "4"}},
		{"since", redrive.Filter{Since: t0.Add(time.Hour)}, []string{"3", "4"}},
		{"until", redrive.Filter{Until: t0.Add(time.Hour)}, []string{"1", "2"}},
		{"shard", redrive.Filter{Shard: "shard-1"}, []string{"3", "4"}},
		{"source app", redrive.Filter{Source: "app"}, []string{"2", "3"}},
		{"source cloudfront", redrive.Filter{Source: "cloudfront"}, []string{"4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			sum, err := redrive.List(context.Background(), store, tt.f, func(l redrive.Letter) error {
				got = append(got, strings.TrimLeft(l.SequenceNumber[2:], "0"))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || sum.Unreadable != 1 || sum.Scanned != 4 {
				t.Fatalf("listed %v (%+v), want %v, 4 scanned, 1 unreadable", got, sum, tt.want)
			}
		})
	}
	var ids []string
	_, _ = redrive.List(context.Background(), store, redrive.Filter{Stages: []string{"opensearch"}}, func(l redrive.Letter) error {
		ids = append(ids, l.EventID())
		return nil
	})
	if fmt.Sprint(ids) != "[ev-2 ev-3]" {
		t.Errorf("event ids %v", ids)
	}
}

func TestParseTime(t *testing.T) {
	now := t0
	for in, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10":        time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		"2026-11-01T10:30:00Z": time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC),
	} {
		if got, err := redrive.ParseTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := redrive.ParseTime("yesterday", now); err == nil {
		t.Error("ParseTime(yesterday) succeeded")
	}
}

// TestReplayTwiceAddsNothing: a replay sends each record once (a record
// dead-lettered twice for one reason is one), grouped by shard in shard
// order; the ledger makes a second replay select nothing; a record that
// failed again is not recorded and is selected by the next replay; a
// record that fails after a replay is a new dead letter and selected.
func TestReplayTwiceAddsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dead.ndjson")
	writeLetters(t, path, t0, msg("shard-1", 9, "opensearch", appData(9)), msg("shard-0", 5, "opensearch", appData(5)),
		msg("shard-0", 2, "parse", "x"), msg("shard-1", 7, "opensearch", appData(7)))
	writeLetters(t, path, t0.Add(time.Minute), msg("shard-0", 5, "opensearch", appData(5))) // the same failure again (a worker replay)
	store := redrive.NewFileStore(path)
	clock := t0.Add(time.Hour)
	now := func() time.Time { return clock }

	target := &fakeTarget{fail: func(l redrive.Letter) error {
		if l.SequenceNumber == seq(7) {
			return errors.New("failed again at opensearch: still bad")
		}
		return nil
	}}
	sum, err := redrive.Replay(context.Background(), store, target, redrive.Options{BatchSize: 2, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(target.sent()); got != "[shard-0/002/parse shard-0/005/opensearch shard-1/007/opensearch shard-1/009/opensearch]" {
		t.Fatalf("sent %s", got)
	}
	if sum.Selected != 4 || sum.Duplicates != 1 || sum.Replayed != 3 || sum.FailedAgain != 1 || sum.OK() || len(sum.Failures) != 1 {
		t.Fatalf("first replay %+v", sum)
	}
	if st, err := os.Stat(path + ".replayed"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ledger: %v %v", st, err)
	}

	// Again: only the record that failed again.
	target2 := &fakeTarget{}
	sum, err = redrive.Replay(context.Background(), store, target2, redrive.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(target2.sent()); got != "[shard-1/007/opensearch]" || sum.AlreadyReplayed != 4 || !sum.OK() {
		t.Fatalf("second replay sent %s, %+v", got, sum)
	}
	// And again: nothing.
	target3 := &fakeTarget{}
	sum, err = redrive.Replay(context.Background(), store, target3, redrive.Options{Now: now})
	if err != nil || len(target3.sent()) != 0 || sum.Selected != 0 || sum.AlreadyReplayed != 5 {
		t.Fatalf("third replay sent %v, %+v, %v", target3.sent(), sum, err)
	}
	// A failure after the replay is a new dead letter.
	writeLetters(t, path, clock.Add(time.Minute), msg("shard-0", 2, "parse", "x"))
	clock = clock.Add(2 * time.Minute)
	target4 := &fakeTarget{}
	if _, err := redrive.Replay(context.Background(), store, target4, redrive.Options{Now: now}); err != nil || fmt.Sprint(target4.sent()) != "[shard-0/002/parse]" {
		t.Fatalf("a new failure after the replay: sent %v, %v", target4.sent(), err)
	}
	// --all lists the replayed ones with when.
	var replayed int
	_, _ = redrive.List(context.Background(), store, redrive.Filter{IncludeReplayed: true}, func(l redrive.Letter) error {
		if !l.Replayed.IsZero() {
			replayed++
		}
		return nil
	})
	if replayed != 6 {
		t.Errorf("%d dead letters listed as replayed, want 6", replayed)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	writeLetters(t, path, t0, msg("s", 1, "parse", "x"), msg("s", 2, "opensearch", appData(2)))
	target := &fakeTarget{}
	sum, err := redrive.Replay(context.Background(), redrive.NewFileStore(path), target, redrive.Options{DryRun: true})
	if err != nil || sum.Selected != 2 || len(target.sent()) != 0 || sum.ByStage["parse"] != 1 {
		t.Fatalf("dry run: %+v, sent %v, %v", sum, target.sent(), err)
	}
	if _, err := os.Stat(path + ".replayed"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a dry run wrote the ledger")
	}
}

// TestStreamTarget puts processors' dead letters back into the stream
// with their data and partition key, and refuses sinks' dead letters.
func TestStreamTarget(t *testing.T) {
	k := producertest.NewKinesis(2)
	st, err := redrive.NewStream(k, "events", []string{"opensearch", "archive"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	writeLetters(t, path, t0, msg("s", 1, "parse", "line one"), msg("s", 2, "opensearch", appData(2)), msg("s", 3, "deaggregate", "raw"))
	sum, err := redrive.Replay(context.Background(), redrive.NewFileStore(path), st, redrive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum.Replayed != 2 || sum.Refused != 1 || !errors.Is(sum.Failures[0].Err, redrive.ErrRefused) {
		t.Fatalf("summary %+v", sum)
	}
	var got []string
	for _, w := range k.Written() {
		got = append(got, w.PartitionKey+"="+string(w.Data))
	}
	if fmt.Sprint(got) != "[asset-1=line one asset-0=raw]" && fmt.Sprint(got) != "[asset-0=raw asset-1=line one]" {
		t.Fatalf("written %v", got)
	}
}

// memSink records what it is given, per name; fail marks messages it
// gives up on.
type memSink struct {
	name string
	mu   *sync.Mutex
	got  map[string][]string // sink → "seq:event_id"
	fail func(*processors.Message) error
}

func (s memSink) Name() string { return s.name }
func (s memSink) Open(_ context.Context, _ worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	return &memShard{s: s, dl: dl}, nil
}
func (s memSink) Close(context.Context) error { return nil }

type memShard struct {
	s    memSink
	dl   processors.DeadLetterer
	last checkpoint.Position
}

func (m *memShard) Write(ctx context.Context, msgs []*processors.Message) error {
	var failed []*processors.Message
	for _, x := range msgs {
		if m.s.fail != nil {
			if err := m.s.fail(x); err != nil {
				failed = append(failed, x.FailedCopy(m.s.name, 1, err))
				continue
			}
		}
		m.s.mu.Lock()
		m.s.got[m.s.name] = append(m.s.got[m.s.name], strings.TrimLeft(x.Record.SequenceNumber[2:], "0")+":"+x.Event.EventID)
		m.s.mu.Unlock()
		m.last = x.Position()
	}
	if len(failed) > 0 {
		return m.dl.DeadLetter(ctx, failed)
	}
	return nil
}
func (m *memShard) Flush(context.Context) error  { return nil }
func (m *memShard) Durable() checkpoint.Position { return m.last }
func (m *memShard) Close() error                 { return nil }

// TestPipelineTarget replays through a pipeline of one processor and two
// sinks: a processor's dead letter through everything; a sink's dead
// letter that carries its event to that sink alone, unprocessed; one
// without its event through the processor and that sink; a record that
// fails again is stored as a new dead letter with the new reason.
func TestPipelineTarget(t *testing.T) {
	dir := t.TempDir()
	dlPath := filepath.Join(dir, "dead.ndjson")
	var mu sync.Mutex
	got := map[string][]string{}
	var processed int
	reg := processors.NewRegistry()
	deadletter.Register(reg)
	reg.RegisterProcessor("appjson", func(context.Context, processors.Options, processors.Deps) (processors.Processor, error) {
		return processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
			for _, m := range batch {
				mu.Lock()
				processed++
				mu.Unlock()
				var v struct {
					EventID    string    `json:"event_id"`
					OccurredAt time.Time `json:"occurred_at"`
				}
				if err := json.Unmarshal(m.Record.Data, &v); err != nil {
					m.Fail("appjson", 1, fmt.Errorf("still not JSON: %w", err))
					continue
				}
				m.Event.EventID, m.Event.EventTime, m.Parsed = v.EventID, v.OccurredAt, true
			}
			return batch, nil
		}), nil
	})
	for _, name := range []string{"mem-a", "mem-b"} {
		reg.RegisterSink(name, func(_ context.Context, o processors.Options, _ processors.Deps) (processors.Sink, error) {
			return memSink{name: o.Name(), mu: &mu, got: got, fail: func(m *processors.Message) error {
				if m.Event.EventID == "ev-66" && o.Name() == "mem-b" {
					return errors.New("mapping conflict, still")
				}
				return nil
			}}, nil
		})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(fmt.Sprintf("processors:\n  - type: appjson\nsinks:\n  - type: mem-a\n  - type: mem-b\ndead_letter:\n  type: file\n  path: %s\n", dlPath)), &doc); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(doc.Content[0])
	if err != nil {
		t.Fatal(err)
	}

	// The dead letters: a processor's (now parseable: the cause was a
	// parser bug), a sink's with its event, a sink's without, one that
	// still fails at its sink, one that still fails to parse.
	writeLetters(t, dlPath, t0, msg("s", 10, "appjson", appData(10)), msg("s", 20, "mem-b", appData(20)),
		msg("s", 66, "mem-b", appData(66)), msg("s", 77, "appjson", "still {not json"))
	withEvent := `{"stream":"events","shard_id":"s","sequence_number":"` + seq(30) + `","sub_sequence_number":0,"partition_key":"k",` +
		`"data_base64":"bm90IHVzZWQ=","event":{"event_id":"ev-30-as-stored","event_type":"view","source":"app","event_time":"2026-11-30T09:00:00Z"},` +
		`"redacted":true,"error":"mapper_parsing_exception","stage":"mem-a","attempts":1,"failed_at":"2026-11-30T10:00:00Z"}` + "\n"
	f, _ := os.OpenFile(dlPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(withEvent)
	f.Close()

	target, err := redrive.NewPipeline(context.Background(), reg, spec, processors.Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := redrive.Replay(context.Background(), redrive.NewFileStore(dlPath), target, redrive.Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"mem-a": {"10:ev-10", "30:ev-30-as-stored"},
		"mem-b": {"10:ev-10", "20:ev-20"},
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("sink %s got %v, want %v", k, got[k], v)
		}
	}
	if processed != 4 { // 10, 20, 66, 77: not 30, which carried its event
		t.Errorf("the processor ran on %d records, want 4", processed)
	}
	if sum.Replayed != 3 || sum.FailedAgain != 2 {
		t.Fatalf("summary %+v", sum)
	}
	for _, f := range sum.Failures {
		if !strings.Contains(f.Err.Error(), "still") {
			t.Errorf("failure %v lacks the new reason", f.Err)
		}
	}
	// The failures are dead letters again, with their new reasons; the
	// next replay selects exactly those.
	var again []string
	_, err = redrive.List(context.Background(), redrive.NewFileStore(dlPath), redrive.Filter{}, func(l redrive.Letter) error {
		again = append(again, l.Stage+":"+l.Error)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(again, "|")
	if !strings.Contains(joined, "mem-b:mapping conflict, still") || !strings.Contains(joined, "appjson:still not JSON") {
		t.Errorf("not replayed now: %v", again)
	}
}

// TestLetterReadsTheDeadLetterFormat: what processors/deadletter writes
// for a parsed, redacted record decodes into a Letter with its event
// (the document id kept), its redaction and its identity.
func TestLetterReadsTheDeadLetterFormat(t *testing.T) {
	m := msg("shard-3", 42, "opensearch", appData(42))
	m.Parsed, m.Redacted = true, true
	m.Event.EventID, m.Event.EventTime, m.Event.Source, m.Event.ClientIP = "ev-42", t0, "app", "203.0.113.0"
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	writeLetters(t, path, t0, m)
	var got []redrive.Letter
	if _, err := redrive.List(context.Background(), redrive.NewFileStore(path), redrive.Filter{}, func(l redrive.Letter) error {
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d letters", len(got))
	}
	l := got[0]
	ev, ok := l.Document()
	if !ok || ev.EventID != "ev-42" || ev.ClientIP != "203.0.113.0" || !l.Redacted || l.EventID() != "ev-42" || l.Source() != "app" {
		t.Fatalf("letter %+v, event %+v (%v)", l, ev, ok)
	}
	if r := l.Record(); r.ShardID != "shard-3" || r.SequenceNumber != seq(42) || r.PartitionKey != "asset-0" || !r.ArrivalTime.Equal(t0) {
		t.Fatalf("record %+v", r)
	}
}

// replayWorld is a pipeline of the appjson processor (JSON app events)
// and the sinks mem-a and mem-b, with a file dead-letter destination.
type replayWorld struct {
	dlPath string
	target *redrive.Pipeline
	mu     sync.Mutex
	got    map[string][]string
}

func newReplayWorld(t *testing.T, extra string) *replayWorld {
	t.Helper()
	w := &replayWorld{dlPath: filepath.Join(t.TempDir(), "dead.ndjson"), got: map[string][]string{}}
	reg := processors.NewRegistry()
	deadletter.Register(reg)
	reg.RegisterProcessor("appjson", func(context.Context, processors.Options, processors.Deps) (processors.Processor, error) {
		return processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
			for _, m := range batch {
				var v struct {
					EventID    string    `json:"event_id"`
					OccurredAt time.Time `json:"occurred_at"`
				}
				if err := json.Unmarshal(m.Record.Data, &v); err != nil {
					m.Fail("appjson", 1, err)
					continue
				}
				m.Event.EventID, m.Event.EventTime, m.Parsed = v.EventID, v.OccurredAt, true
			}
			return batch, nil
		}), nil
	})
	for _, name := range []string{"mem-a", "mem-b"} {
		reg.RegisterSink(name, func(_ context.Context, o processors.Options, _ processors.Deps) (processors.Sink, error) {
			return memSink{name: o.Name(), mu: &w.mu, got: w.got}, nil
		})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(fmt.Sprintf("processors:\n  - type: appjson\nsinks:\n  - type: mem-a\n  - type: mem-b\ndead_letter:\n  type: file\n  path: %s\n%s", w.dlPath, extra)), &doc); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(doc.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	if w.target, err = redrive.NewPipeline(context.Background(), reg, spec, processors.Deps{}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.target.Close(context.Background()) })
	return w
}

func (w *replayWorld) replay(t *testing.T) redrive.Summary {
	t.Helper()
	sum, err := redrive.Replay(context.Background(), redrive.NewFileStore(w.dlPath), w.target, redrive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// Issue 11 follow-up: a replay judged the event-time window against the
// dead letter's failed_at, so a record that failed long after it arrived
// (a sink down for weeks, a worker far behind) was refused again although
// the worker had accepted it. The dead letter now carries the record's
// arrival time, and the replay judges against that; a dead letter without
// it keeps the old behaviour.
func TestReplayJudgesTheWindowAgainstArrival(t *testing.T) {
	occurred := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC) // appData's occurred_at
	late := occurred.Add(40 * 24 * time.Hour)                 // beyond the default 30 days
	tests := []struct {
		name      string
		arrival   time.Time
		delivered bool
	}{
		{"arrival_time kept", occurred.Add(5 * time.Minute), true},
		{"an old dead letter without it", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newReplayWorld(t, "")
			m := msg("s", 5, "appjson", appData(5))
			m.Record.ArrivalTime = tt.arrival
			writeLetters(t, w.dlPath, late, m)
			sum := w.replay(t)
			if got := sum.Replayed == 1; got != tt.delivered {
				t.Fatalf("delivered %v, want %v: %+v", got, tt.delivered, sum)
			}
			if !tt.delivered && (len(sum.Failures) != 1 || !errors.Is(sum.Failures[0].Err, processors.ErrEventTimeOutOfRange)) {
				t.Fatalf("failures %v, want the event-time window", sum.Failures)
			}
		})
	}
}

// Issue 11 follow-up: whether a dead letter is a sink's or a processor's
// came from comparing its stage with the config's sink names, so a
// renamed sink's dead letters were run through every sink, and a
// processor sharing a name with a sink was taken for it. The dead letter
// now says (stage_kind); only an old one without it is judged by name.
func TestStageKindDecidesTheRoute(t *testing.T) {
	w := newReplayWorld(t, "")
	proc := msg("s", 1, "mem-a", appData(1)) // a processor named like a sink
	proc.FailWith(processors.Failure{Stage: "mem-a", Attempts: 1, Err: errors.New("lookup down")})
	gone := msg("s", 2, "old-archive", appData(2)) // a sink the config no longer has
	gone.FailWith(processors.Failure{Stage: "old-archive", Attempts: 1, Err: errors.New("refused"), Sink: true})
	sink := msg("s", 3, "mem-b", appData(3))
	writeLetters(t, w.dlPath, t0, proc, gone, sink)
	// A dead letter of a sink written before stage_kind existed.
	legacy := `{"stream":"events","shard_id":"s","sequence_number":"` + seq(4) + `","sub_sequence_number":0,"partition_key":"k",` +
		`"data_base64":"` + base64.StdEncoding.EncodeToString([]byte(appData(4))) + `","error":"x","stage":"mem-a","attempts":1,"failed_at":"2026-11-30T10:00:00Z"}` + "\n"
	f, _ := os.OpenFile(w.dlPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(legacy)
	f.Close()

	sum := w.replay(t)
	want := map[string][]string{
		"mem-a": {"1:ev-1", "4:ev-4"}, // the processor's through every sink; the legacy sink's to its sink
		"mem-b": {"1:ev-1", "3:ev-3"},
	}
	for k, v := range want {
		if fmt.Sprint(w.got[k]) != fmt.Sprint(v) {
			t.Errorf("sink %s got %v, want %v", k, w.got[k], v)
		}
	}
	if sum.Replayed != 3 || sum.Refused != 1 || !errors.Is(sum.Failures[0].Err, redrive.ErrRefused) ||
		!strings.Contains(sum.Failures[0].Err.Error(), "old-archive") {
		t.Fatalf("summary %+v, want the gone sink's dead letter refused", sum)
	}

	// The stream target refuses by stage_kind too.
	k := producertest.NewKinesis(1)
	st, err := redrive.NewStream(k, "events", []string{"mem-a", "mem-b"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	writeLetters(t, path, t0, proc, gone)
	sum, err = redrive.Replay(context.Background(), redrive.NewFileStore(path), st, redrive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum.Replayed != 1 || sum.Refused != 1 || len(k.Written()) != 1 || string(k.Written()[0].Data) != appData(1) {
		t.Fatalf("stream target: %+v, written %d", sum, len(k.Written()))
	}
}

// A record that fails again at the same stage with a new reason is a new
// dead letter (its S3 key differs: deadletter.Key); a replay still sends
// the record once, choosing the latest failure.
func TestReplayDedupesOnPositionAndStage(t *testing.T) {
	w := newReplayWorld(t, "")
	first := msg("s", 7, "mem-b", appData(7))
	writeLetters(t, w.dlPath, t0, first)
	again := msg("s", 7, "mem-b", appData(7))
	again.FailWith(processors.Failure{Stage: "mem-b", Attempts: 1, Err: errors.New("a new reason"), Sink: true})
	writeLetters(t, w.dlPath, t0.Add(time.Hour), again)
	if deadletter.Key("p/", t0, []*processors.Message{first}) == deadletter.Key("p/", t0, []*processors.Message{again}) {
		t.Fatal("the two failures share an S3 key: the second would be lost to If-None-Match")
	}
	sum := w.replay(t)
	if sum.Scanned != 2 || sum.Duplicates != 1 || sum.Selected != 1 || sum.Replayed != 1 || len(w.got["mem-b"]) != 1 {
		t.Fatalf("summary %+v, mem-b got %v; want one record sent once", sum, w.got["mem-b"])
	}
}
