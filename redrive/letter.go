// Package redrive lists the dead letters a pipeline stored (package
// processors/deadletter: an S3 prefix or a file) and replays selected
// ones once their cause is fixed: into the stream, or straight through
// the pipeline's processors and sinks. It is what `leasehold deadletter
// list` and `leasehold deadletter replay` run.
//
// # Idempotence
//
// A replay keeps each record's identity: through the pipeline it is the
// same stream, shard, sequence and sub-sequence number, so every sink
// derives the same document id, object key and item key as the first
// time; a dead letter of a sink that carries the event the pipeline had
// built is written to that sink alone, as it was. Each dead letter
// replayed is then recorded in a ledger beside the dead letters
// (<prefix>replayed/ for S3, <path>.replayed for a file), and a later
// replay skips it: replaying twice adds nothing. The one window is a
// crash between a sink's write and the ledger's: the next replay writes
// the same documents again under the same ids.
package redrive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/worker"
)

// Letter is one dead letter as stored by processors/deadletter (one NDJSON
// line), with where it was read and whether a replay already covered it.
type Letter struct {
	Stream            string `json:"stream"`
	ShardID           string `json:"shard_id"`
	SequenceNumber    string `json:"sequence_number"`
	SubSequenceNumber int64  `json:"sub_sequence_number"`
	PartitionKey      string `json:"partition_key"`
	// Data is the record as the pipeline received it (with addresses
	// truncated when Redacted).
	Data []byte `json:"data_base64"`
	// Event is the document the pipeline had built when the record
	// failed, for a parsed record; absent otherwise (and in dead letters
	// written before the field existed).
	Event json.RawMessage `json:"event,omitempty"`
	// Redacted: the pipeline truncated the addresses in Data, Event and
	// Error (anonymize_ip), so Data is not byte for byte the stream's.
	Redacted bool   `json:"redacted,omitempty"`
	Error    string `json:"error"`
	Stage    string `json:"stage"`
	// StageKind is "sink" or "processor" (deadletter.StageSink,
	// StageProcessor); empty in dead letters written before it existed.
	// See IsSink.
	StageKind string    `json:"stage_kind,omitempty"`
	Attempts  int       `json:"attempts"`
	FailedAt  time.Time `json:"failed_at"`
	// ArrivalTime is when the record arrived in the stream; zero in dead
	// letters written before it existed. See Record.
	ArrivalTime time.Time `json:"arrival_time,omitzero"`

	// Origin is where the line was read: "s3://bucket/key#line" or
	// "path#line".
	Origin string `json:"-"`
	// Replayed is when a replay covered this dead letter (zero: never).
	Replayed time.Time `json:"-"`
}

// decodeLetter parses one NDJSON line.
func decodeLetter(b []byte, origin string) (Letter, error) {
	var l Letter
	if err := json.Unmarshal(b, &l); err != nil {
		return Letter{}, fmt.Errorf("redrive: %s: not a dead letter: %w", origin, err)
	}
	if l.Stage == "" && l.SequenceNumber == "" {
		return Letter{}, fmt.Errorf("redrive: %s: not a dead letter: no stage or sequence number", origin)
	}
	l.Origin = origin
	return l, nil
}

// Key identifies the failed record and the stage that gave up on it: a
// record dead-lettered twice for the same reason (a worker replay after a
// crash) has one key. The replay ledger is keyed by it.
func (l Letter) Key() string {
	h := sha256.Sum256([]byte(l.Stream + "\x00" + l.ShardID + "\x00" + l.SequenceNumber + "\x00" +
		strconv.FormatInt(l.SubSequenceNumber, 10) + "\x00" + l.Stage))
	return hex.EncodeToString(h[:12])
}

// Position is the record's place in its shard.
func (l Letter) Position() checkpoint.Position {
	return checkpoint.Position{Sequence: l.SequenceNumber, Sub: l.SubSequenceNumber}
}

// Record rebuilds the record the pipeline received, with its identity,
// so sinks derive the same ids, and its arrival time, so that the
// pipeline judges the event-time window as it did the first time. A dead
// letter written before arrival_time existed gives the failure time
// instead, which followed the arrival closely unless a sink was down for
// long.
func (l Letter) Record() worker.Record {
	arrival := l.ArrivalTime
	if arrival.IsZero() {
		arrival = l.FailedAt
	}
	return worker.Record{StreamName: l.Stream, ShardID: l.ShardID, SequenceNumber: l.SequenceNumber,
		SubSequenceNumber: l.SubSequenceNumber, PartitionKey: l.PartitionKey, Data: l.Data, ArrivalTime: arrival}
}

// IsSink reports whether a sink gave up on the record (the other sinks
// have it), as the dead letter's stage_kind says. For a dead letter
// written before stage_kind existed it asks isSinkName whether the stage
// is the name of a configured sink, as replays used to.
func (l Letter) IsSink(isSinkName func(stage string) bool) bool {
	switch l.StageKind {
	case deadletter.StageSink:
		return true
	case deadletter.StageProcessor:
		return false
	}
	return isSinkName(l.Stage)
}

// Document decodes the event the pipeline had built, if the dead letter
// carries one.
func (l Letter) Document() (event.Event, bool) {
	if len(l.Event) == 0 {
		return event.Event{}, false
	}
	var ev event.Event
	if err := json.Unmarshal(l.Event, &ev); err != nil {
		return event.Event{}, false
	}
	return ev, true
}

// Source names where the record came from: "app" (a JSON app event),
// "cloudfront" (a log line), "kpl" (a malformed KPL aggregate), or
// "unknown".
func (l Letter) Source() string {
	if ev, ok := l.Document(); ok && ev.Source != "" {
		return string(ev.Source)
	}
	d := bytes.TrimSpace(l.Data)
	switch {
	case kpl.IsAggregated(l.Data):
		return "kpl"
	case len(d) > 0 && d[0] == '{':
		return string(event.SourceApp)
	case len(d) > 0 && bytes.Count(d, []byte{'\t'}) >= 10:
		return string(event.SourceCloudFront)
	}
	return "unknown"
}

// EventID is the document id the sinks use when the dead letter carries
// the event; else the app event's event_id read from Data; else "".
func (l Letter) EventID() string {
	if ev, ok := l.Document(); ok {
		return ev.EventID
	}
	var v struct {
		EventID string `json:"event_id"`
	}
	if d := bytes.TrimSpace(l.Data); len(d) > 0 && d[0] == '{' && json.Unmarshal(d, &v) == nil {
		return v.EventID
	}
	return ""
}

// Filter selects dead letters. Zero fields select everything.
type Filter struct {
	// Stages keeps the dead letters of these stages ("opensearch",
	// "parse", ...).
	Stages []string
	// Reason keeps those whose error matches.
	Reason *regexp.Regexp
	// Since and Until bound the failure time: Since <= failed_at < Until.
	Since, Until time.Time
	// Stream, Shard and Source keep those of this stream, shard and
	// source (see Letter.Source).
	Stream, Shard, Source string
	// IncludeReplayed keeps dead letters a replay already covered.
	IncludeReplayed bool
}

// Match reports whether l is selected.
func (f Filter) Match(l Letter) bool {
	switch {
	case len(f.Stages) > 0 && !contains(f.Stages, l.Stage),
		f.Reason != nil && !f.Reason.MatchString(l.Error),
		!f.Since.IsZero() && l.FailedAt.Before(f.Since),
		!f.Until.IsZero() && !l.FailedAt.Before(f.Until),
		f.Stream != "" && l.Stream != f.Stream,
		f.Shard != "" && l.ShardID != f.Shard,
		f.Source != "" && l.Source() != f.Source,
		!f.IncludeReplayed && !l.Replayed.IsZero():
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseTime reads a time bound for a filter: RFC 3339, a date
// (2024-05-01, UTC midnight), a date and hour (2024-05-01T10), or a
// duration meaning that long before now ("24h", "90m").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("redrive: %q: a duration before now must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("redrive: %q is not a time: use RFC 3339, 2024-05-01, 2024-05-01T10, or a duration before now such as 24h", s)
}
