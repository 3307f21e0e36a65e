// Package event defines Event, the one analytics document that every source
// (CloudFront standard logs, CloudFront real-time logs, platform app events)
// is mapped into before enrichment and indexing.
//
// An Event is a plain value: it holds no locks and no references to shared
// state, so copies may be used from any goroutine. Parsers fill the fields they
// know; processors later fill Geo, UA, Bot, AssetID, Tenant and Asset; the worker fills
// SourceRecord. AppendJSON encodes an Event without reflection for the hot path;
// its output decodes with encoding/json back into an equal Event.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"
)

// Type is the kind of user action an Event records. It is a marketing
// analyst's verb, not an HTTP method: see docs/EVENTS.md for how each source
// derives it.
type Type string

// The event types. App events may carry any of them except TypeRequest;
// CloudFront requests are classified into TypeView, TypeDownload or TypeRequest.
const (
	TypeView             Type = "view"
	TypeDownload         Type = "download"
	TypeShare            Type = "share"
	TypeConvert          Type = "convert"
	TypePermissionChange Type = "permission_change"
	// TypeRequest is a CloudFront request that is not an asset view or download
	// (a page, a script, an API call, a failed or partial request).
	TypeRequest Type = "request"
)

// Valid reports whether t is one of the event types defined above.
func (t Type) Valid() bool {
	switch t {
	case TypeView, TypeDownload, TypeShare, TypeConvert, TypePermissionChange, TypeRequest:
		return true
	}
	return false
}

// Source names the producer of an Event.
type Source string

// The sources.
const (
	// SourceCloudFront is a CloudFront access-log line, standard or real-time.
	SourceCloudFront Source = "cloudfront"
	// SourceApp is a JSON event emitted by the platform.
	SourceApp Source = "app"
)

// Valid reports whether s is one of the sources defined above.
func (s Source) Valid() bool { return s == SourceCloudFront || s == SourceApp }

// The device classes of UA.Device.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

// MaxIDBytes is the longest EventID that Validate accepts: OpenSearch rejects a
// document _id longer than 512 bytes, and EventID is used as that _id.
const MaxIDBytes = 512

// Event is one analytics document. JSON names are snake_case; empty strings and
// zero sub-objects are omitted, while event_time, event_type, event_id, source,
// bot, bytes and status are always present so that every document has the same
// core shape.
type Event struct {
	// EventTime is when the action happened, in UTC. For CloudFront it is when
	// the edge finished the response.
	EventTime time.Time `json:"event_time"`
	// EventType is the analyst's verb (view, download, ...).
	EventType Type `json:"event_type"`
	// EventID is deterministic for a given input, so a replay indexes the same
	// document id: x-edge-request-id for CloudFront, the producer's id for app
	// events.
	EventID string `json:"event_id"`
	// Source is the producer of the event.
	Source Source `json:"source"`
	// AssetID identifies the asset. App events carry it; for CloudFront it is
	// empty until a processor extracts it from URI.
	AssetID string `json:"asset_id,omitempty"`
	// Tenant is the customer that owns the asset.
	Tenant string `json:"tenant,omitempty"`
	// Asset is the asset's catalog entry (title, kind, collection), filled
	// by an asset_lookup processor; zero when the asset is not in the
	// catalog or no lookup runs.
	Asset Asset `json:"asset,omitzero"`
	// UserID is the platform user, when known.
	UserID string `json:"user_id,omitempty"`
	// ClientIP is the address of the viewer as seen by the producer (c-ip for
	// CloudFront), textual IPv4 or IPv6.
	ClientIP string `json:"client_ip,omitempty"`
	// ForwardedFor lists the addresses of an X-Forwarded-For header, in order,
	// as logged (entries are not validated as IP addresses).
	ForwardedFor []string `json:"forwarded_for,omitempty"`
	// Referrer is the decoded Referer URL.
	Referrer string `json:"referrer,omitempty"`
	// ReferringDomain is the lowercase host of Referrer without "www.".
	ReferringDomain string `json:"referring_domain,omitempty"`
	// Geo is filled by a geoip processor (and partly by CloudFront real-time
	// logs that carry c-country and asn).
	Geo Geo `json:"geo,omitzero"`
	// UA is the parsed user agent, filled by a user-agent processor.
	UA UA `json:"ua,omitzero"`
	// Bot is true when the user agent is a known robot.
	Bot bool `json:"bot"`
	// UserAgent is the raw (decoded) User-Agent header.
	UserAgent string `json:"user_agent,omitempty"`
	// Bytes is the number of bytes the edge sent to the viewer (sc-bytes).
	Bytes int64 `json:"bytes"`
	// Status is the HTTP status code; 0 means no response status: CloudFront's
	// "000" (the viewer closed the connection first) or an app event.
	Status int `json:"status"`
	// Method is the HTTP method.
	Method string `json:"method,omitempty"`
	// URI is the decoded request path, without the query string.
	URI string `json:"uri,omitempty"`
	// Query is the query string as the viewer sent it (still URL-encoded, so
	// that '&' and '=' keep their meaning), without the leading '?'.
	Query string `json:"query,omitempty"`
	// Host is the lowercase host name the viewer asked for.
	Host string `json:"host,omitempty"`
	// CacheResult is CloudFront's x-edge-result-type (Hit, Miss, Error, ...).
	CacheResult string `json:"cache_result,omitempty"`
	// EdgeLocation is the CloudFront point of presence (e.g. "LAX1").
	EdgeLocation string `json:"edge_location,omitempty"`
	// TimeTakenMS is the edge's request time in milliseconds (time-taken):
	// nil when the log does not carry it, a pointer to 0 for a request
	// served in under half a millisecond.
	TimeTakenMS *int64 `json:"time_taken_ms,omitempty"`
	// TimeToFirstByteMS is the milliseconds from receiving the request to
	// writing the first byte of the response (time-to-first-byte); nil when
	// absent.
	TimeToFirstByteMS *int64 `json:"time_to_first_byte_ms,omitempty"`
	// Protocol is the viewer protocol: http, https, ws or wss.
	Protocol string `json:"protocol,omitempty"`
	// ProtocolVersion is the HTTP version the viewer used (cs-protocol-
	// version): HTTP/0.9, HTTP/1.0, HTTP/1.1, HTTP/2.0 or HTTP/3.0.
	ProtocolVersion string `json:"protocol_version,omitempty"`
	// TLSProtocol and TLSCipher are what the viewer and the edge negotiated
	// for an HTTPS request (ssl-protocol, ssl-cipher), e.g. "TLSv1.3" and
	// "TLS_AES_128_GCM_SHA256".
	TLSProtocol string `json:"tls_protocol,omitempty"`
	TLSCipher   string `json:"tls_cipher,omitempty"`
	// ContentType is the response Content-Type.
	ContentType string `json:"content_type,omitempty"`
	// ContentLength is the response's Content-Length header (sc-content-
	// len): the size of the body of this response, which for a 206 is the
	// size of the range, not of the file. nil when absent.
	ContentLength *int64 `json:"content_length,omitempty"`
	// RangeStart and RangeEnd are the first and last byte of the response's
	// Content-Range (sc-range-start, sc-range-end), inclusive; nil when the
	// response had no Content-Range. A 206 with RangeStart 0 and RangeEnd
	// below the file size is the beginning of a partial download.
	RangeStart *int64 `json:"range_start,omitempty"`
	RangeEnd   *int64 `json:"range_end,omitempty"`
	// RequestBytes is the size of the viewer's request, headers included
	// (cs-bytes).
	RequestBytes int64 `json:"request_bytes,omitempty"`
	// ClientPort is the viewer's source port (c-port).
	ClientPort int `json:"client_port,omitempty"`
	// EdgeResponseResult is how the edge classified the response just
	// before sending it (x-edge-response-result-type); CacheResult is how
	// it ended. They differ when the viewer went away during the transfer.
	EdgeResponseResult string `json:"edge_response_result,omitempty"`
	// EdgeDetailedResult is x-edge-detailed-result-type: CacheResult, or
	// for an Error the specific error (OriginDnsError, ClientCommError,
	// ...).
	EdgeDetailedResult string `json:"edge_detailed_result,omitempty"`
	// Properties is the app event's free-form object, as compact JSON.
	Properties json.RawMessage `json:"properties,omitempty"`
	// SourceRecord locates the Kinesis record the event came from; the worker
	// fills it.
	SourceRecord SourceRecord `json:"source_record,omitzero"`
}

// Geo is the geographic and network origin of the client.
type Geo struct {
	CountryISO string `json:"country_iso,omitempty"` // ISO 3166-1 alpha-2, upper case
	Country    string `json:"country,omitempty"`
	City       string `json:"city,omitempty"`
	ASN        uint32 `json:"asn,omitempty"`
	ASOrg      string `json:"as_org,omitempty"`
}

// The asset kinds of Asset.Type.
const (
	AssetVideo    = "video"
	AssetImage    = "image"
	AssetAudio    = "audio"
	AssetDocument = "document"
	AssetOther    = "other"
)

// Asset is what the platform's catalog says about an asset: people think in
// titles, events carry ids.
type Asset struct {
	Title string `json:"title,omitempty"`
	// Type is one of AssetVideo, AssetImage, AssetAudio, AssetDocument or
	// AssetOther.
	Type string `json:"type,omitempty"`
	// Collection is the folder or collection the asset is filed in.
	Collection string `json:"collection,omitempty"`
}

// UA is a parsed user agent.
type UA struct {
	Browser        string `json:"browser,omitempty"`
	BrowserVersion string `json:"browser_version,omitempty"`
	OS             string `json:"os,omitempty"`
	// Device is one of DeviceDesktop, DeviceMobile, DeviceTablet, DeviceBot or
	// DeviceOther.
	Device string `json:"device,omitempty"`
}

// SourceRecord locates the Kinesis record an event was read from. With KPL
// aggregation several events share a SequenceNumber and differ by
// SubSequenceNumber.
type SourceRecord struct {
	Stream            string `json:"stream,omitempty"`
	ShardID           string `json:"shard_id,omitempty"`
	SequenceNumber    string `json:"sequence_number,omitempty"`
	SubSequenceNumber int64  `json:"sub_sequence_number"`
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("event: invalid event")

// Validate reports every problem that would make e unusable as a document:
// missing or non-UTC event time (or a year outside 0001–9999, which JSON time
// encoding rejects), an unknown event type or source, an empty or over-long
// event id, a client IP that does not parse, invalid JSON in Properties, or
// strings that are not valid UTF-8. The error wraps ErrInvalid once per
// problem (joined with errors.Join); nil means valid. It does not block and is
// safe for concurrent use on an Event no one is writing.
func (e *Event) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if e.EventTime.IsZero() {
		bad("event_time is zero")
	} else {
		if _, off := e.EventTime.Zone(); off != 0 {
			bad("event_time %s is not UTC", e.EventTime)
		}
		if y := e.EventTime.Year(); y < 1 || y > 9999 {
			bad("event_time year %d is outside 0001-9999", y)
		}
	}
	if !e.EventType.Valid() {
		bad("event_type %q is unknown", e.EventType)
	}
	switch {
	case e.EventID == "":
		bad("event_id is empty")
	case len(e.EventID) > MaxIDBytes:
		bad("event_id is %d bytes, limit is %d", len(e.EventID), MaxIDBytes)
	}
	if !e.Source.Valid() {
		bad("source %q is unknown", e.Source)
	}
	if e.ClientIP != "" {
		if _, err := netip.ParseAddr(e.ClientIP); err != nil {
			bad("client_ip %q is not an IP address", e.ClientIP)
		}
	}
	if len(e.Properties) > 0 && !json.Valid(e.Properties) {
		bad("properties is not valid JSON")
	}
	for name, s := range e.stringFields() {
		if !utf8.ValidString(s) {
			bad("%s is not valid UTF-8", name)
		}
	}
	return errors.Join(errs...)
}

// stringFields yields the name and value of every free-text string field.
func (e *Event) stringFields() func(yield func(string, string) bool) {
	return func(yield func(string, string) bool) {
		fields := [...]struct{ n, v string }{
			{"event_id", e.EventID}, {"asset_id", e.AssetID}, {"tenant", e.Tenant},
			{"user_id", e.UserID}, {"referrer", e.Referrer}, {"referring_domain", e.ReferringDomain},
			{"user_agent", e.UserAgent}, {"method", e.Method}, {"uri", e.URI}, {"query", e.Query},
			{"host", e.Host}, {"cache_result", e.CacheResult}, {"edge_location", e.EdgeLocation},
			{"protocol", e.Protocol}, {"protocol_version", e.ProtocolVersion}, {"tls_protocol", e.TLSProtocol},
			{"tls_cipher", e.TLSCipher}, {"content_type", e.ContentType},
			{"edge_response_result", e.EdgeResponseResult}, {"edge_detailed_result", e.EdgeDetailedResult},
			{"geo.country", e.Geo.Country}, {"geo.city", e.Geo.City}, {"geo.as_org", e.Geo.ASOrg},
			{"ua.browser", e.UA.Browser}, {"ua.os", e.UA.OS},
			{"asset.title", e.Asset.Title}, {"asset.type", e.Asset.Type}, {"asset.collection", e.Asset.Collection},
		}
		for _, f := range fields {
			if !yield(f.n, f.v) {
				return
			}
		}
		for _, f := range e.ForwardedFor {
			if !yield("forwarded_for", f) {
				return
			}
		}
	}
}
