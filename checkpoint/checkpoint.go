// Package checkpoint defines how far a shard has been processed: a position
// in the shard (sequence number plus KPL sub-sequence number), sentinels for
// where a shard without progress starts and for a finished shard, and the
// per-sink progress a checkpoint may carry.
//
// Checkpoints are written only through a fenced lease (see package lease):
// a worker that lost its lease can never advance one.
package checkpoint

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Sentinel sequence values. A real Kinesis sequence number is a decimal
// string of up to 128 digits, so these never collide with one.
const (
	TrimHorizon = "TRIM_HORIZON" // start at the oldest record
	Latest      = "LATEST"       // start after the newest record
	ShardEnd    = "SHARD_END"    // every record of a closed shard is processed
	atTimestamp = "AT_TIMESTAMP:"
)

// ErrInvalid reports a malformed stored position.
var ErrInvalid = errors.New("checkpoint: invalid position")

// Position is a place in a shard. Sequence is a Kinesis sequence number or
// one of the sentinels; Sub is the index of the last processed user record
// inside a KPL aggregate (0 for plain records), so a restart resumes exactly
// after it. A Position means "everything up to and including this record is
// done".
type Position struct {
	Sequence string
	Sub      int64
}

// AtTimestamp returns the starting position for AT_TIMESTAMP.
func AtTimestamp(t time.Time) Position {
	return Position{Sequence: atTimestamp + t.UTC().Format(time.RFC3339Nano)}
}

// Timestamp returns the time of an AT_TIMESTAMP position.
func (p Position) Timestamp() (time.Time, bool) {
	s, ok := strings.CutPrefix(p.Sequence, atTimestamp)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// IsZero reports an unset position.
func (p Position) IsZero() bool { return p.Sequence == "" }

// IsSentinel reports whether p names a start position or SHARD_END rather
// than a record.
func (p Position) IsSentinel() bool {
	return p.Sequence == TrimHorizon || p.Sequence == Latest || p.Sequence == ShardEnd || strings.HasPrefix(p.Sequence, atTimestamp)
}

// Ended reports whether p is SHARD_END.
func (p Position) Ended() bool { return p.Sequence == ShardEnd }

// String formats p as "sequence" or "sequence/sub".
func (p Position) String() string {
	if p.Sub == 0 {
		return p.Sequence
	}
	return p.Sequence + "/" + strconv.FormatInt(p.Sub, 10)
}

// Parse reads the String form.
func Parse(s string) (Position, error) {
	seq, sub, found := strings.Cut(s, "/")
	p := Position{Sequence: seq}
	if found {
		n, err := strconv.ParseInt(sub, 10, 64)
		if err != nil || n < 0 {
			return Position{}, fmt.Errorf("%w: %q", ErrInvalid, s)
		}
		p.Sub = n
	}
	return p, nil
}

// Less reports whether a is strictly before b. Both must name records
// (not sentinels); sequence numbers compare as big integers.
func Less(a, b Position) bool {
	if c := compareSeq(a.Sequence, b.Sequence); c != 0 {
		return c < 0
	}
	return a.Sub < b.Sub
}

func compareSeq(a, b string) int {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		return x.Cmp(y)
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Checkpoint is what a worker stores for a shard: the position every sink
// has durably passed, and optionally each sink's own progress, so a sink
// that is ahead skips what it already wrote after a restart.
type Checkpoint struct {
	Position Position
	Sinks    map[string]Position
	// MillisBehind is how far behind the stream's tip the shard was when
	// the checkpoint was written (from GetRecords). It is for people
	// (`leasehold leases`) and never used for decisions; 0 when unknown.
	MillisBehind int64
}
