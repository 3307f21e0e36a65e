package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/event"
)

// PartitionBy names the event field whose value becomes an event's Kinesis
// partition key.
type PartitionBy string

const (
	// ByAssetID keys events by asset_id (the default): one asset's events
	// go to one shard, in order, and a busy tenant spreads over every
	// shard instead of saturating one (a shard takes 1 MiB/s or 1,000
	// records/s).
	ByAssetID PartitionBy = "asset_id"
	// ByTenantID keys events by tenant_id: one tenant's events stay in
	// order on one shard, at the cost of hot shards for large tenants.
	ByTenantID PartitionBy = "tenant_id"
)

// Validate reports an unknown field name.
func (b PartitionBy) Validate() error {
	switch b {
	case ByAssetID, ByTenantID:
		return nil
	}
	return fmt.Errorf("collector: partition key %q: use %s or %s", string(b), ByAssetID, ByTenantID)
}

// key returns ev's partition key. Both fields are required by the schema
// and at most 256 characters, the Kinesis partition key limit, so a valid
// event always has a usable key.
func (b PartitionBy) key(ev event.Event) string {
	if b == ByTenantID {
		return ev.Tenant
	}
	return ev.AssetID
}

// FieldError is one problem with one event: the top-level field at fault
// ("" for the event as a whole: not JSON, not an object, too large) and
// what is wrong with it.
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Rejected is one invalid event: its 1-based line in the request body
// (blank lines count, so numbers match an editor's), its event_id when
// one could be read, and every problem found.
type Rejected struct {
	Line    int          `json:"line"`
	EventID string       `json:"event_id,omitempty"`
	Errors  []FieldError `json:"errors"`
}

// line is one non-blank line of NDJSON input.
type line struct {
	n    int    // 1-based line number
	data []byte // without the line ending and surrounding white space
}

// splitLines returns the non-blank lines of body. It does not copy.
func splitLines(body []byte) []line {
	var out []line
	n := 0
	for len(body) > 0 {
		n++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, line{n: n, data: l})
		}
	}
	return out
}

// valid is an event that passed validation, ready for the producer.
type valid struct {
	line int
	id   string
	key  string
	data []byte // the event as sent, not copied
}

// size is what the event costs in the producer's buffer.
func (v valid) size() int { return len(v.data) + len(v.key) }

// check validates one line with appevent.Parse. It returns the event ready
// to send, or why it is invalid.
func check(l line, by PartitionBy) (valid, *Rejected) {
	ev, err := appevent.Parse(l.data)
	if err == nil {
		return valid{line: l.n, id: ev.EventID, key: by.key(ev), data: l.data}, nil
	}
	rej := &Rejected{Line: l.n, EventID: bestEffortID(l.data)}
	var ve *appevent.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			rej.Errors = append(rej.Errors, FieldError{Field: p.Field, Message: p.Message})
		}
	}
	if len(rej.Errors) == 0 { // Parse documents no other error; never lose the reason
		rej.Errors = []FieldError{{Message: err.Error()}}
	}
	return valid{}, rej
}

// bestEffortID returns the event_id string of an invalid event, if it has
// one, cut to appevent.MaxEventIDChars characters, so a client can match a
// rejection to its event without counting lines.
func bestEffortID(data []byte) string {
	if len(data) > appevent.MaxBodyBytes {
		return ""
	}
	var v struct {
		EventID json.RawMessage `json:"event_id"`
	}
	if json.Unmarshal(data, &v) != nil || len(v.EventID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.EventID, &s) != nil || !utf8.ValidString(s) {
		return ""
	}
	if utf8.RuneCountInString(s) > appevent.MaxEventIDChars {
		s = string([]rune(s)[:appevent.MaxEventIDChars])
	}
	return s
}
