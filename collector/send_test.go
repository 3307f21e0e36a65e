package collector_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

func TestSend(t *testing.T) {
	tooLong := `{"event_id":"long","x":"` + strings.Repeat("x", appevent.MaxBodyBytes+200) + `"}` // over the read buffer
	justOver := `{"event_id":"over","x":"` + strings.Repeat("x", appevent.MaxBodyBytes) + `"}`    // read, refused by Parse
	tests := []struct {
		name         string
		input        string
		opts         []producer.Option
		failEntries  bool
		wantSent     []string
		wantReport   collector.Report // Lines, Invalid, Sent, Unsent
		wantProblems []string         // substrings, in order
		wantErr      error
	}{
		{
			name:       "all valid, blank lines, CRLF, no final newline",
			input:      event("a") + "\r\n\n" + event("b") + "\n   \n" + event("c"),
			wantSent:   []string{"a", "b", "c"},
			wantReport: collector.Report{Lines: 3, Sent: 3},
		},
		{
			name:       "aggregated",
			input:      ndjson(event("a"), event("b"), event("c"), event("d")),
			opts:       []producer.Option{producer.WithAggregation(true)},
			wantSent:   []string{"a", "b", "c", "d"},
			wantReport: collector.Report{Lines: 4, Sent: 4},
		},
		{
			name:       "invalid lines are reported and skipped",
			input:      ndjson(event("a"), `{"event_id":"b","event_type":"click"}`, "", "garbage", tooLong, justOver, event("g")),
			wantSent:   []string{"a", "g"},
			wantReport: collector.Report{Lines: 6, Invalid: 4, Sent: 2},
			wantProblems: []string{
				`line 2: event_type: "click" is not one of`,
				"line 4: invalid JSON",
				"line 5: line is over 65536 bytes",
				"line 6: body is 65562 bytes, limit is 65536",
			},
			wantErr: collector.ErrIncomplete,
		},
		{
			name:         "events Kinesis refuses are reported",
			input:        ndjson(event("a"), event("b")),
			opts:         []producer.Option{producer.WithMaxAttempts(1)},
			failEntries:  true,
			wantReport:   collector.Report{Lines: 2, Unsent: 2},
			wantProblems: []string{"(event_id a): not sent: InternalFailure", "(event_id b): not sent: InternalFailure"},
			wantErr:      collector.ErrIncomplete,
		},
		{
			name:       "empty input",
			input:      "",
			wantReport: collector.Report{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(2)
			if tt.failEntries {
				k.EntryError = func(_, _ int, _ string) string { return "InternalFailure" }
			}
			var problems bytes.Buffer
			opts := append([]producer.Option{producer.WithLinger(time.Millisecond)}, tt.opts...)
			rep, err := collector.Send(context.Background(), k, "events", strings.NewReader(tt.input),
				collector.SendConfig{Problems: &problems}, opts...)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got := collector.Report{Lines: rep.Lines, Invalid: rep.Invalid, Sent: rep.Sent, Unsent: rep.Unsent}
			if got != tt.wantReport {
				t.Errorf("report %+v, want %+v", got, tt.wantReport)
			}
			ids, _ := writtenIDs(t, k)
			if !reflect.DeepEqual(ids, tt.wantSent) {
				t.Errorf("written %v, want %v", ids, tt.wantSent)
			}
			if rep.KinesisRecords != uint64(len(k.Written())) {
				t.Errorf("report says %d Kinesis records, %d written", rep.KinesisRecords, len(k.Written()))
			}
			out := problems.String()
			for _, want := range tt.wantProblems {
				i := strings.Index(out, want)
				if i < 0 {
					t.Errorf("problems lack %q:\n%s", want, out)
					continue
				}
				out = out[i+len(want):]
			}
			if len(tt.wantProblems) == 0 && problems.Len() > 0 {
				t.Errorf("unexpected problems:\n%s", problems.String())
			}
		})
	}
}

// TestSendStopsOnCancel checks that a cancelled Send stops reading and
// still sends what it had read.
func TestSendStopsOnCancel(t *testing.T) {
	k := producertest.NewKinesis(1)
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{lines: []string{event("a") + "\n", event("b") + "\n", event("c") + "\n"}, cancelAt: 2, cancel: cancel}
	rep, err := collector.Send(ctx, k, "events", r, collector.SendConfig{}, producer.WithLinger(time.Hour))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ids, _ := writtenIDs(t, k)
	if !reflect.DeepEqual(ids, []string{"a", "b"}) || rep.Sent != 2 {
		t.Errorf("written %v (report: %d sent), want [a b]", ids, rep.Sent)
	}
}

// cancelAfter returns one line per Read and cancels after cancelAt lines.
type cancelAfter struct {
	lines    []string
	cancelAt int
	cancel   func()
	n        int
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n == r.cancelAt {
		r.cancel()
	}
	if r.n >= len(r.lines) {
		return 0, errors.New("read past the end: Send kept reading after cancel")
	}
	n := copy(p, r.lines[r.n])
	r.n++
	return n, nil
}
