// Package deadletter stores the messages a pipeline gives up on, with the
// raw Kinesis record and the reason, so nothing is dropped silently. Two
// destinations:
//
//   - "s3": one gzipped NDJSON object per shard and stage per DeadLetter
//     call, under <prefix>dt=YYYY-MM-DD/<shard>/ (the UTC date of the
//     failure);
//   - "file": the same lines appended to a local file, fsynced before
//     DeadLetter returns (tests, local debugging).
//
// Each line is a Line: where the record came from and when it arrived in
// the stream, its data in base64, the event as the pipeline had built it
// (when the record was parsed), the error, the stage that gave up and
// whether it is a sink or a processor, the attempts made and when. A replay
// runs the data through the pipeline again; the event keeps the
// document's id. When the pipeline anonymizes addresses, the data, the
// event and the error have them truncated and the line says "redacted". Both
// destinations make the lines durable before DeadLetter returns, as
// processors.DeadLetterer requires, and are safe for concurrent use.
package deadletter

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/processors"
)

// Type names used in the pipeline config (pipeline.dead_letter.type).
const (
	TypeS3   = "s3"
	TypeFile = "file"
)

// Line is one dead-lettered record, one JSON object per line.
type Line struct {
	Stream            string `json:"stream"`
	ShardID           string `json:"shard_id"`
	SequenceNumber    string `json:"sequence_number"`
	SubSequenceNumber int64  `json:"sub_sequence_number"`
	PartitionKey      string `json:"partition_key"`
	// Data is the raw record (the whole Kinesis record for a malformed
	// KPL aggregate), base64 in JSON. When Redacted, every IP address in
	// it is truncated as in the sinks' documents, so it is not byte for
	// byte what the stream holds.
	Data []byte `json:"data_base64"`
	// Event is the document as the pipeline had built it when the record
	// failed (event.Event's JSON), for a record that was parsed; absent
	// otherwise. Its event_id is the document's id in the sinks.
	Event json.RawMessage `json:"event,omitempty"`
	// Redacted says Data, Event and Error had their addresses truncated
	// by the pipeline's anonymize_ip (processors.Redactor).
	Redacted bool `json:"redacted,omitempty"`
	// Error is the reason, Stage the processor or sink that gave up
	// ("deaggregate", "cloudfront", "opensearch", ...), Attempts how
	// many tries it made.
	Error string `json:"error"`
	Stage string `json:"stage"`
	// StageKind is StageSink when Stage is a sink (the other sinks have
	// the record: a replay writes it to that sink alone), StageProcessor
	// for a processor or the pipeline itself (no sink has it: a replay
	// runs it through everything). Absent in dead letters written before
	// the field existed: readers then decide by the configured sinks'
	// names.
	StageKind string    `json:"stage_kind,omitempty"`
	Attempts  int       `json:"attempts"`
	FailedAt  time.Time `json:"failed_at"`
	// ArrivalTime is the record's Kinesis approximate arrival time, the
	// instant the event-time window is judged against: a replay judges it
	// again against this, not against FailedAt. Absent when unknown (and
	// in dead letters written before the field existed).
	ArrivalTime time.Time `json:"arrival_time,omitzero"`
}

// Values of Line.StageKind.
const (
	StageSink      = "sink"
	StageProcessor = "processor"
)

// NewLine describes m, failed at the given time. A message without a
// Failure (a caller's mistake) gets stage and error "unknown", so it is
// still kept. It does not block.
func NewLine(m *processors.Message, failedAt time.Time) Line {
	r := m.Record
	l := Line{
		Stream: r.StreamName, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
		PartitionKey: r.PartitionKey, Data: r.Data, Error: "unknown", Stage: "unknown", FailedAt: failedAt.UTC(),
		Redacted: m.Redacted,
	}
	if m.Parsed {
		l.Event = m.Event.AppendJSON(nil)
	}
	if !r.ArrivalTime.IsZero() {
		l.ArrivalTime = r.ArrivalTime.UTC()
	}
	if f := m.Failed(); f != nil {
		l.Stage, l.Attempts, l.StageKind = f.Stage, f.Attempts, StageProcessor
		if f.Sink {
			l.StageKind = StageSink
		}
		if f.Err != nil {
			l.Error = f.Err.Error()
		}
	}
	return l
}

// appendLines appends the NDJSON of msgs to dst.
func appendLines(dst []byte, msgs []*processors.Message, at time.Time) ([]byte, error) {
	for _, m := range msgs {
		b, err := json.Marshal(NewLine(m, at))
		if err != nil {
			return nil, fmt.Errorf("deadletter: encode: %w", err)
		}
		dst = append(append(dst, b...), '\n')
	}
	return dst, nil
}

// Register adds the "s3" and "file" dead-letter types to r. It panics if
// either is already registered.
func Register(r *processors.Registry) {
	r.RegisterDeadLetter(TypeS3, S3FromConfig)
	r.RegisterDeadLetter(TypeFile, FileFromConfig)
}
