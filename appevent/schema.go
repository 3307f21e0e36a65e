package appevent

// Limits of the app-event schema. They are part of the contract with
// producers and are repeated in SchemaJSON and docs/EVENTS.md.
const (
	// MaxBodyBytes is the largest event body accepted, in bytes.
	MaxBodyBytes = 64 << 10
	// MaxEventIDChars is the longest event_id, in characters (event ids are
	// visible ASCII, so also bytes).
	MaxEventIDChars = 128
	// MaxIDChars is the longest asset_id, tenant_id or user_id, in characters.
	MaxIDChars = 256
	// MaxUserAgentChars is the longest user_agent, in characters.
	MaxUserAgentChars = 2048
	// MaxReferrerChars is the longest referrer, in characters.
	MaxReferrerChars = 4096
	// MaxPropertiesBytes is the largest properties object, in bytes of its
	// compact JSON encoding.
	MaxPropertiesBytes = 16 << 10
)

// SchemaJSON is the JSON Schema (draft 2020-12) of an app event, for
// producers to validate against before sending. Parse enforces the same
// rules, plus two a schema cannot state: the body size limit (MaxBodyBytes)
// and the compact size of properties (MaxPropertiesBytes). Unknown top-level
// fields are allowed: consumers ignore them (see Parse).
const SchemaJSON = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "urn:leasehold:schema:app-event:1",
  "title": "leasehold app event",
  "description": "One user action on the platform, sent to the Kinesis stream as one JSON object per record. Unknown top-level fields are ignored by the consumer. The whole body must be at most 65536 bytes.",
  "type": "object",
  "required": ["event_id", "event_type", "occurred_at", "asset_id", "tenant_id"],
  "properties": {
    "event_id": {
      "description": "Producer-assigned unique id; the document id, so a resent event overwrites itself.",
      "type": "string",
      "pattern": "^[\\x21-\\x7e]{1,128}$",
      "minLength": 1,
      "maxLength": 128
    },
    "event_type": {
      "type": "string",
      "enum": ["view", "download", "share", "convert", "permission_change"]
    },
    "occurred_at": {
      "description": "When the action happened, RFC 3339 with a time zone offset; stored in UTC.",
      "type": "string",
      "format": "date-time"
    },
    "asset_id": {
      "type": "string",
      "minLength": 1,
      "maxLength": 256,
      "pattern": "^[^\\u0000-\\u001f\\u007f]+$"
    },
    "tenant_id": {
      "type": "string",
      "minLength": 1,
      "maxLength": 256,
      "pattern": "^[^\\u0000-\\u001f\\u007f]+$"
    },
    "user_id": {
      "type": ["string", "null"],
      "maxLength": 256,
      "pattern": "^[^\\u0000-\\u001f\\u007f]*$"
    },
    "client_ip": {
      "description": "IPv4 or IPv6 address of the user's client.",
      "type": ["string", "null"],
      "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"type": "null"}]
    },
    "user_agent": {
      "type": ["string", "null"],
      "maxLength": 2048
    },
    "referrer": {
      "type": ["string", "null"],
      "maxLength": 4096
    },
    "properties": {
      "description": "Free-form details of the action; at most 16384 bytes as compact JSON.",
      "type": ["object", "null"]
    }
  },
  "additionalProperties": true
}`
