package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of e to dst and returns the extended
// slice. It uses no reflection and, when dst has room, does not allocate.
//
// The output is byte-for-byte what encoding/json produces for e through an
// Encoder with SetEscapeHTML(false) (without the Encoder's trailing newline):
// the same field order and omission rules, invalid UTF-8 replaced by U+FFFD per
// bad byte, control characters, U+2028 and U+2029 escaped, and event_time in
// RFC 3339 with nanoseconds. Two differences are deliberate, because AppendJSON
// cannot fail: an event_time outside years 0001–9999 is written anyway (JSON
// encoding would return an error), and Properties that are not valid JSON are
// left out (JSON encoding would return an error). Validate catches both.
//
// It does not block and is safe for concurrent use on an Event no one is
// writing.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_time":"`...)
	dst = e.EventTime.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","event_type":`...)
	dst = appendString(dst, string(e.EventType))
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, e.EventID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, string(e.Source))
	dst = appendOptString(dst, `,"asset_id":`, e.AssetID)
	dst = appendOptString(dst, `,"tenant":`, e.Tenant)
	if e.Asset != (Asset{}) {
		dst = append(dst, `,"asset":`...)
		dst = e.Asset.appendJSON(dst)
	}
	dst = appendOptString(dst, `,"user_id":`, e.UserID)
	dst = appendOptString(dst, `,"client_ip":`, e.ClientIP)
	if len(e.ForwardedFor) > 0 {
		dst = append(dst, `,"forwarded_for":[`...)
		for i, s := range e.ForwardedFor {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	}
	dst = appendOptString(dst, `,"referrer":`, e.Referrer)
	dst = appendOptString(dst, `,"referring_domain":`, e.ReferringDomain)
	if e.Geo != (Geo{}) {
		dst = append(dst, `,"geo":`...)
		dst = e.Geo.appendJSON(dst)
	}
	if e.UA != (UA{}) {
		dst = append(dst, `,"ua":`...)
		dst = e.UA.appendJSON(dst)
	}
	dst = append(dst, `,"bot":`...)
	dst = strconv.AppendBool(dst, e.Bot)
	dst = appendOptString(dst, `,"user_agent":`, e.UserAgent)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = appendOptString(dst, `,"method":`, e.Method)
	dst = appendOptString(dst, `,"uri":`, e.URI)
	dst = appendOptString(dst, `,"query":`, e.Query)
	dst = appendOptString(dst, `,"host":`, e.Host)
	dst = appendOptString(dst, `,"cache_result":`, e.CacheResult)
	dst = appendOptString(dst, `,"edge_location":`, e.EdgeLocation)
	dst = appendOptInt(dst, `,"time_taken_ms":`, e.TimeTakenMS)
	dst = appendOptInt(dst, `,"time_to_first_byte_ms":`, e.TimeToFirstByteMS)
	dst = appendOptString(dst, `,"protocol":`, e.Protocol)
	dst = appendOptString(dst, `,"protocol_version":`, e.ProtocolVersion)
	dst = appendOptString(dst, `,"tls_protocol":`, e.TLSProtocol)
	dst = appendOptString(dst, `,"tls_cipher":`, e.TLSCipher)
	dst = appendOptString(dst, `,"content_type":`, e.ContentType)
	dst = appendOptInt(dst, `,"content_length":`, e.ContentLength)
	dst = appendOptInt(dst, `,"range_start":`, e.RangeStart)
	dst = appendOptInt(dst, `,"range_end":`, e.RangeEnd)
	if e.RequestBytes != 0 {
		dst = append(dst, `,"request_bytes":`...)
		dst = strconv.AppendInt(dst, e.RequestBytes, 10)
	}
	if e.ClientPort != 0 {
		dst = append(dst, `,"client_port":`...)
		dst = strconv.AppendInt(dst, int64(e.ClientPort), 10)
	}
	dst = appendOptString(dst, `,"edge_response_result":`, e.EdgeResponseResult)
	dst = appendOptString(dst, `,"edge_detailed_result":`, e.EdgeDetailedResult)
	if len(e.Properties) > 0 {
		dst = appendRaw(dst, `,"properties":`, e.Properties)
	}
	if e.SourceRecord != (SourceRecord{}) {
		dst = append(dst, `,"source_record":`...)
		dst = e.SourceRecord.appendJSON(dst)
	}
	return append(dst, '}')
}

// appendJSON appends g as a JSON object.
func (g *Geo) appendJSON(dst []byte) []byte {
	start := len(dst)
	dst = appendOptString(dst, `,"country_iso":`, g.CountryISO)
	dst = appendOptString(dst, `,"country":`, g.Country)
	dst = appendOptString(dst, `,"city":`, g.City)
	if g.ASN != 0 {
		dst = append(dst, `,"asn":`...)
		dst = strconv.AppendUint(dst, uint64(g.ASN), 10)
	}
	dst = appendOptString(dst, `,"as_org":`, g.ASOrg)
	return closeObject(dst, start)
}

// appendJSON appends a as a JSON object.
func (a *Asset) appendJSON(dst []byte) []byte {
	start := len(dst)
	dst = appendOptString(dst, `,"title":`, a.Title)
	dst = appendOptString(dst, `,"type":`, a.Type)
	dst = appendOptString(dst, `,"collection":`, a.Collection)
	return closeObject(dst, start)
}

// appendJSON appends u as a JSON object.
func (u *UA) appendJSON(dst []byte) []byte {
	start := len(dst)
	dst = appendOptString(dst, `,"browser":`, u.Browser)
	dst = appendOptString(dst, `,"browser_version":`, u.BrowserVersion)
	dst = appendOptString(dst, `,"os":`, u.OS)
	dst = appendOptString(dst, `,"device":`, u.Device)
	return closeObject(dst, start)
}

// appendJSON appends r as a JSON object.
func (r *SourceRecord) appendJSON(dst []byte) []byte {
	start := len(dst)
	dst = appendOptString(dst, `,"stream":`, r.Stream)
	dst = appendOptString(dst, `,"shard_id":`, r.ShardID)
	dst = appendOptString(dst, `,"sequence_number":`, r.SequenceNumber)
	dst = append(dst, `,"sub_sequence_number":`...)
	dst = strconv.AppendInt(dst, r.SubSequenceNumber, 10)
	return closeObject(dst, start)
}

// closeObject turns the members appended after start, each written with a
// leading comma, into an object: the first comma becomes '{'.
func closeObject(dst []byte, start int) []byte {
	if len(dst) == start {
		return append(dst, '{', '}')
	}
	dst[start] = '{'
	return append(dst, '}')
}

// appendOptString appends key and the quoted s unless s is empty (omitempty).
func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendString(dst, s)
}

// appendOptInt appends key and *v unless v is nil (omitempty on a pointer:
// a pointer to 0 is written).
func appendOptInt(dst []byte, key string, v *int64) []byte {
	if v == nil {
		return dst
	}
	dst = append(dst, key...)
	return strconv.AppendInt(dst, *v, 10)
}

// appendRaw appends key and raw compacted, or nothing if raw is not valid JSON.
func appendRaw(dst []byte, key string, raw []byte) []byte {
	mark := len(dst)
	dst = append(dst, key...)
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return dst[:mark]
	}
	return buf.Bytes()
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string, escaping exactly as
// encoding/json does with HTML escaping off (invalid UTF-8 becomes
// U+FFFD). It never allocates beyond growing dst. Sinks that build JSON by
// hand (the OpenSearch bulk action lines) share it.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// appendString appends s as a quoted JSON string, escaping exactly as
// encoding/json does with HTML escaping off.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
