package checkpoint_test

import (
	"errors"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

// TestLess: the no-duplicates and no-loss promises rest on Less — the
// pipeline skips what is at or before a checkpoint, and a checkpoint never
// moves back — so sequence numbers must compare as numbers (Kinesis' are
// decimal strings of varying length), then by KPL sub-sequence number.
func TestLess(t *testing.T) {
	p := func(seq string, sub int64) checkpoint.Position { return checkpoint.Position{Sequence: seq, Sub: sub} }
	const long = "49590338271490256608559692538361571095921575989136588898"
	const longNext = "49590338271490256608559692538361571095921575989136588899"
	for _, tc := range []struct {
		name string
		a, b checkpoint.Position
		want bool
	}{
		{"equal", p("100", 0), p("100", 0), false},
		{"equal long", p(long, 3), p(long, 3), false},
		{"smaller sequence", p("100", 0), p("101", 0), true},
		{"larger sequence", p("101", 0), p("100", 0), false},
		{"shorter is smaller although it sorts later as text", p("9", 0), p("10", 0), true},
		{"longer is larger although it sorts earlier as text", p("10", 0), p("9", 0), false},
		{"real lengths, one apart", p(long, 0), p(longNext, 0), true},
		{"real lengths, different lengths", p("4959033827149025660855969253836157109592157598913658889", 0), p(long, 0), true},
		{"same record, earlier sub-record", p(long, 1), p(long, 2), true},
		{"same record, later sub-record", p(long, 2), p(long, 1), false},
		{"plain record before its aggregate's later sub-records", p(long, 0), p(long, 7), true},
		{"sequence decides before sub", p("100", 9), p("101", 0), true},
		{"sequence decides before sub, reversed", p("101", 0), p("100", 9), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkpoint.Less(tc.a, tc.b); got != tc.want {
				t.Errorf("Less(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if tc.want && checkpoint.Less(tc.b, tc.a) {
				t.Errorf("Less(%v, %v) and Less(%v, %v) both true", tc.a, tc.b, tc.b, tc.a)
			}
		})
	}
}

// TestParseString: String and Parse round-trip, so a stored checkpoint
// resumes exactly after the sub-record it names.
func TestParseString(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    checkpoint.Position
		wantErr bool
	}{
		{"123", checkpoint.Position{Sequence: "123"}, false},
		{"123/4", checkpoint.Position{Sequence: "123", Sub: 4}, false},
		{checkpoint.TrimHorizon, checkpoint.Position{Sequence: checkpoint.TrimHorizon}, false},
		{checkpoint.ShardEnd, checkpoint.Position{Sequence: checkpoint.ShardEnd}, false},
		{"123/x", checkpoint.Position{}, true},
		{"123/-1", checkpoint.Position{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := checkpoint.Parse(tc.in)
			if tc.wantErr {
				if !errors.Is(err, checkpoint.ErrInvalid) {
					t.Fatalf("Parse(%q) = %v, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Errorf("String() = %q, want %q", s, tc.in)
			}
		})
	}
}

// TestSentinels: start positions and SHARD_END are not records.
func TestSentinels(t *testing.T) {
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		p                     checkpoint.Position
		sentinel, ended, zero bool
	}{
		{checkpoint.Position{}, false, false, true},
		{checkpoint.Position{Sequence: "1"}, false, false, false},
		{checkpoint.Position{Sequence: checkpoint.TrimHorizon}, true, false, false},
		{checkpoint.Position{Sequence: checkpoint.Latest}, true, false, false},
		{checkpoint.Position{Sequence: checkpoint.ShardEnd}, true, true, false},
		{checkpoint.AtTimestamp(ts), true, false, false},
	} {
		if tc.p.IsSentinel() != tc.sentinel || tc.p.Ended() != tc.ended || tc.p.IsZero() != tc.zero {
			t.Errorf("%q: IsSentinel %v Ended %v IsZero %v, want %v %v %v", tc.p, tc.p.IsSentinel(), tc.p.Ended(), tc.p.IsZero(), tc.sentinel, tc.ended, tc.zero)
		}
	}
	got, ok := checkpoint.AtTimestamp(ts).Timestamp()
	if !ok || !got.Equal(ts) {
		t.Errorf("AtTimestamp(%v).Timestamp() = %v, %v", ts, got, ok)
	}
}
