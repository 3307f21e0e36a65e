// Package appevent parses and validates the JSON events the platform emits
// (view, download, share, convert, permission change) into event.Event.
//
// The schema is SchemaJSON (a JSON Schema document) and the table in
// docs/EVENTS.md. Parsing is a pure function: no I/O, no shared state, safe
// for concurrent use.
package appevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leasehold/leasehold/event"
)

// ErrInvalid is wrapped by every *ValidationError, so callers can test
// errors.Is(err, appevent.ErrInvalid) to route a poison record to the
// dead-letter queue.
var ErrInvalid = errors.New("appevent: invalid event")

// Problem is one reason an event was rejected.
type Problem struct {
	// Field is the top-level field name, or "" for the body as a whole
	// (empty, too large, not JSON, not an object).
	Field string
	// Message says what is wrong, e.g. "is required".
	Message string
}

// ValidationError lists every problem found in an event, in schema order for
// field problems. It wraps ErrInvalid.
type ValidationError struct {
	Problems []Problem
}

// Error joins the problems: "appevent: invalid event: event_id: is required;
// occurred_at: ...".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Parse decodes and validates one app event (one Kinesis record's data) and
// maps it into an event.Event with Source "app". It returns a
// *ValidationError listing every problem, each with its field name; no other
// error type. Unknown top-level fields are ignored and not copied into the
// event (properties is the place for extra data); use ParseWithUnknown to
// learn their names, e.g. to count them. It does not block, does not retain
// data, and is safe for concurrent use.
func Parse(data []byte) (event.Event, error) {
	ev, _, err := ParseWithUnknown(data)
	return ev, err
}

// ParseWithUnknown is Parse that also returns the names of unknown top-level
// fields, in the order they appear (also when the event is invalid, as far as
// the body could be read).
func ParseWithUnknown(data []byte) (event.Event, []string, error) {
	var v validator
	raw, unknown, ok := v.read(data)
	if !ok {
		return event.Event{}, unknown, &ValidationError{Problems: v.problems}
	}
	ev := v.build(raw)
	if len(v.problems) > 0 {
		return event.Event{}, unknown, &ValidationError{Problems: v.problems}
	}
	return ev, unknown, nil
}

// fields holds the raw JSON value of each known field (nil when absent).
type fields struct {
	eventID, eventType, occurredAt, assetID, tenantID json.RawMessage
	userID, clientIP, userAgent, referrer, properties json.RawMessage
}

// validator collects problems.
type validator struct {
	problems []Problem
}

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// read splits the body into the raw values of known fields and the names of
// unknown ones. ok is false when the body as a whole is unusable (empty, too
// large, not a JSON object); field problems (a repeated key) leave ok true so
// that every field is still checked.
func (v *validator) read(data []byte) (f fields, unknown []string, ok bool) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		v.add("", "body is empty")
		return f, unknown, false
	case len(data) > MaxBodyBytes:
		v.add("", "body is %d bytes, limit is %d", len(data), MaxBodyBytes)
		return f, unknown, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		v.add("", "invalid JSON: %v", err)
		return f, unknown, false
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		v.add("", "body must be a JSON object, got %s", kindOfToken(tok))
		return f, unknown, false
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			v.add("", "invalid JSON: %v", err)
			return f, unknown, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			v.add("", "invalid JSON in the value of %q: %v", key, err)
			return f, unknown, false
		}
		if seen[key] {
			v.add(key, "appears more than once")
			continue
		}
		seen[key] = true
		if dst := f.slot(key); dst != nil {
			*dst = raw
		} else {
			unknown = append(unknown, key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		v.add("", "invalid JSON: %v", err)
		return f, unknown, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		v.add("", "invalid JSON: data after the object")
		return f, unknown, false
	}
	return f, unknown, true
}

// slot returns where the raw value of a known field goes, or nil.
func (f *fields) slot(key string) *json.RawMessage {
	switch key {
	case "event_id":
		return &f.eventID
	case "event_type":
		return &f.eventType
	case "occurred_at":
		return &f.occurredAt
	case "asset_id":
		return &f.assetID
	case "tenant_id":
		return &f.tenantID
	case "user_id":
		return &f.userID
	case "client_ip":
		return &f.clientIP
	case "user_agent":
		return &f.userAgent
	case "referrer":
		return &f.referrer
	case "properties":
		return &f.properties
	}
	return nil
}

// build validates each field in schema order and maps it into an event.
func (v *validator) build(f fields) event.Event {
	ev := event.Event{Source: event.SourceApp}

	ev.EventID = v.str("event_id", f.eventID, true, MaxEventIDChars)
	for i := 0; i < len(ev.EventID); i++ {
		if c := ev.EventID[i]; c < 0x21 || c > 0x7e {
			v.add("event_id", "must be visible ASCII characters (no spaces), found %q at byte %d", rune(c), i)
			break
		}
	}

	if t := v.str("event_type", f.eventType, true, 64); t != "" {
		switch typ := event.Type(t); typ {
		case event.TypeView, event.TypeDownload, event.TypeShare, event.TypeConvert, event.TypePermissionChange:
			ev.EventType = typ
		default:
			v.add("event_type", "%q is not one of view, download, share, convert, permission_change", t)
		}
	}

	if s := v.str("occurred_at", f.occurredAt, true, 64); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		switch {
		case err != nil:
			v.add("occurred_at", "%q is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00.250Z)", s)
		case t.UTC().Year() < 1 || t.UTC().Year() > 9999:
			v.add("occurred_at", "%q is outside years 0001-9999 in UTC", s)
		default:
			ev.EventTime = t.UTC()
		}
	}

	ev.AssetID = v.id("asset_id", f.assetID, true)
	ev.Tenant = v.id("tenant_id", f.tenantID, true)
	ev.UserID = v.id("user_id", f.userID, false)

	if s := v.str("client_ip", f.clientIP, false, 64); s != "" {
		if _, err := netip.ParseAddr(s); err != nil {
			v.add("client_ip", "%q is not an IPv4 or IPv6 address", s)
		} else {
			ev.ClientIP = s
		}
	}
	ev.UserAgent = v.str("user_agent", f.userAgent, false, MaxUserAgentChars)
	ev.Referrer = v.str("referrer", f.referrer, false, MaxReferrerChars)
	ev.ReferringDomain = event.ReferringDomain(ev.Referrer)
	ev.Properties = v.object("properties", f.properties)
	if len(v.problems) == 0 {
		// Safety net: what passes the schema must be a valid document.
		if err := ev.Validate(); err != nil {
			v.add("", "%v", err)
		}
	}
	return ev
}

// str decodes a string field. A missing or null optional field is "". It
// records a problem for a missing required field, a value of another type, an
// empty required string, or more than maxChars characters.
func (v *validator) str(name string, raw json.RawMessage, required bool, maxChars int) string {
	if raw == nil || string(raw) == "null" {
		if required {
			v.add(name, "is required")
		}
		return ""
	}
	if raw[0] != '"' {
		v.add(name, "must be a string, got %s", kindOf(raw))
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.add(name, "invalid string: %v", err)
		return ""
	}
	if required && s == "" {
		v.add(name, "must not be empty")
		return ""
	}
	if n := utf8.RuneCountInString(s); n > maxChars {
		v.add(name, "is %d characters, limit is %d", n, maxChars)
		return ""
	}
	return s
}

// id decodes an identifier: a string of at most MaxIDChars characters without
// control characters.
func (v *validator) id(name string, raw json.RawMessage, required bool) string {
	s := v.str(name, raw, required, MaxIDChars)
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			v.add(name, "must not contain control characters")
			return ""
		}
	}
	return s
}

// object validates properties: a JSON object (or null/absent) of at most
// MaxPropertiesBytes once compacted. It returns the compact encoding.
func (v *validator) object(name string, raw json.RawMessage) json.RawMessage {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		v.add(name, "must be an object, got %s", kindOf(raw))
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		v.add(name, "invalid JSON: %v", err)
		return nil
	}
	if buf.Len() > MaxPropertiesBytes {
		v.add(name, "is %d bytes, limit is %d", buf.Len(), MaxPropertiesBytes)
		return nil
	}
	if !utf8.Valid(buf.Bytes()) {
		v.add(name, "is not valid UTF-8")
		return nil
	}
	if buf.Len() == 2 { // {}
		return nil
	}
	return json.RawMessage(buf.Bytes())
}

// kindOf names the JSON type of a raw value for messages.
func kindOf(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// kindOfToken names the JSON type of a decoder token for messages.
func kindOfToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", t.String())
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}
