package cloudfront

import (
	"fmt"

	"github.com/leasehold/leasehold/event"
)

// RealtimeParser parses CloudFront real-time log records: one request per
// Kinesis record, tab-separated values with no header, in the field order of
// the real-time log configuration. It is immutable and safe for concurrent
// use.
type RealtimeParser struct {
	layout Layout
}

// NewRealtimeParser returns a parser for records with the given fields, in
// the order the real-time log configuration lists them (the Fields of
// CloudFront's RealtimeLogConfig, e.g. "timestamp", "c-ip", "sc-status", ...).
// Names are matched exactly as CloudFront spells them and mapped by the
// meaning AWS's real-time log reference gives them: cs-host is the Host
// header the viewer sent (the event's Host), x-host-header the
// distribution's domain (Host only when cs-host is absent). It returns an error
// wrapping ErrUnknownField that names the first unknown field, or one wrapping
// ErrBadLayout if fields is empty, names a field twice, or lacks "timestamp"
// (without it an event has no time).
func NewRealtimeParser(fields []string) (*RealtimeParser, error) {
	l := Layout{names: append([]string(nil), fields...), cols: make([]field, len(fields))}
	seen := make(map[string]bool, len(fields))
	for i, name := range fields {
		f, ok := realtimeField(name)
		if !ok {
			return nil, fmt.Errorf("%w %q (at position %d)", ErrUnknownField, name, i+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: field %q appears twice", ErrBadLayout, name)
		}
		seen[name] = true
		l.cols[i] = f
	}
	if len(fields) > 0 && !seen["timestamp"] && !seen["timestamp(ms)"] {
		return nil, fmt.Errorf("%w: real-time fields must include timestamp", ErrBadLayout)
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	return &RealtimeParser{layout: l}, nil
}

// Fields returns a copy of the configured field names.
func (p *RealtimeParser) Fields() []string { return p.layout.Fields() }

// Parse parses one record's data (a trailing newline is allowed) into an
// event. The event time comes from timestamp (epoch seconds with
// milliseconds); cs-uri-stem may carry the query string, which is split off
// into Query unless cs-uri-query is configured and not empty. Errors are
// *LineError values with Line 0, as for ParseLine. It does not block and does
// not retain data.
func (p *RealtimeParser) Parse(data []byte) (event.Event, error) {
	return parse(&p.layout, data, 0)
}
