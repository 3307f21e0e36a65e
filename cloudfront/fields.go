package cloudfront

import (
	"errors"
	"fmt"
	"strings"
)

// field identifies a log field this package knows, in either format, by
// its meaning rather than its name: the same name can mean different things
// in the two formats (x-host-header is the viewer's Host header in standard
// logs and the distribution's domain in real-time logs). The first 33 values
// are in the order of the current standard-log layout, so a historical
// layout (a prefix of it) maps column i to field(i).
type field uint8

const (
	fDate field = iota
	fTime
	fEdgeLocation
	fSCBytes
	fCIP
	fCSMethod
	fDistributionDomain // standard cs(Host); real-time x-host-header
	fCSURIStem
	fSCStatus
	fCSReferer
	fCSUserAgent
	fCSURIQuery
	fCSCookie
	fEdgeResultType
	fEdgeRequestID
	fViewerHost // standard x-host-header; real-time cs-host
	fCSProtocol
	fCSBytes
	fTimeTaken
	fForwardedFor
	fSSLProtocol
	fSSLCipher
	fEdgeResponseResultType
	fCSProtocolVersion
	fFLEStatus
	fFLEEncryptedFields
	fCPort
	fTimeToFirstByte
	fEdgeDetailedResultType
	fSCContentType
	fSCContentLen
	fSCRangeStart
	fSCRangeEnd
	numStandardFields // 33
)

// Fields that only real-time logs (and standard logging v2) have.
const (
	fTimestamp field = numStandardFields + iota
	fTimestampMS
	fCCountry
	fASN
	fIgnored // a known field this package does not map; also the count of ids
)

// standardNames holds the current standard-log header in order; every older
// layout is a prefix of it. Read-only.
var standardNames = [numStandardFields]string{
	"date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)",
	"cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query",
	"cs(Cookie)", "x-edge-result-type", "x-edge-request-id", "x-host-header",
	"cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol",
	"ssl-cipher", "x-edge-response-result-type", "cs-protocol-version", "fle-status",
	"fle-encrypted-fields", "c-port", "time-to-first-byte",
	"x-edge-detailed-result-type", "sc-content-type", "sc-content-len",
	"sc-range-start", "sc-range-end",
}

// standardIDs maps column i of a standard layout to field(i). Read-only.
var standardIDs = func() (ids [numStandardFields]field) {
	for i := range ids {
		ids[i] = field(i)
	}
	return ids
}()

// StandardFieldCounts lists the field counts the standard log format has had,
// oldest first. Each layout is the prefix of the current 33-field header.
func StandardFieldCounts() []int { return []int{12, 15, 18, 19, 23, 24, 26, 33} }

// isStandardCount reports whether n is one of StandardFieldCounts.
func isStandardCount(n int) bool {
	switch n {
	case 12, 15, 18, 19, 23, 24, 26, 33:
		return true
	}
	return false
}

// standardField returns the id of a standard-log header name. Names are
// matched case-insensitively, first as standard-log names, then as
// real-time names (standard logging v2 offers some of those, and real-time
// logs copied to files by Firehose get a header of them); realtime says the
// header is in the real-time dialect, where x-host-header is the
// distribution's domain. ok is false for a name this package does not know;
// such columns are skipped.
func standardField(name string, realtime bool) (f field, ok bool) {
	lower := strings.ToLower(name)
	if realtime || lower != "x-host-header" {
		if f, ok := realtimeField(lower); ok {
			return f, true
		}
	}
	for i, n := range standardNames {
		if strings.EqualFold(n, name) {
			return field(i), true
		}
	}
	if lower == "distributionid" || lower == "distributiontenantid" {
		return fIgnored, true // standard logging v2
	}
	return fIgnored, false
}

// realtimeOnlyNames are the real-time spellings of request headers whose
// standard-log names differ (cs-host for cs(Host), ...). A #Fields header
// that uses one is in the real-time dialect.
var realtimeOnlyNames = []string{"cs-host", "cs-user-agent", "cs-referer", "cs-cookie"}

// rtmpNames are fields of RTMP (streaming distribution) logs, which record
// playback events (connect, play, stop), not HTTP requests. CloudFront
// stopped serving RTMP at the end of 2020; old archives still hold them.
var rtmpNames = []string{"x-event", "x-sname", "x-cf-status", "x-cf-client-id", "x-sid"}

// realtimeField returns the id of a real-time log field name (exact match, as
// CloudFront's API spells them), by the meaning AWS's real-time log
// reference gives it. ok is false for an unknown name.
func realtimeField(name string) (f field, ok bool) {
	switch name {
	case "timestamp":
		return fTimestamp, true
	case "timestamp(ms)":
		return fTimestampMS, true
	case "c-ip":
		return fCIP, true
	case "time-to-first-byte":
		return fTimeToFirstByte, true
	case "sc-status":
		return fSCStatus, true
	case "sc-bytes":
		return fSCBytes, true
	case "cs-method":
		return fCSMethod, true
	case "cs-protocol":
		return fCSProtocol, true
	case "cs-host":
		// "The value that the viewer included in the Host header": the
		// customer's own domain when it uses one.
		return fViewerHost, true
	case "cs-uri-stem":
		return fCSURIStem, true
	case "cs-bytes":
		return fCSBytes, true
	case "x-edge-location":
		return fEdgeLocation, true
	case "x-edge-request-id":
		return fEdgeRequestID, true
	case "x-host-header":
		// "The domain name of the CloudFront distribution" in real-time
		// logs, unlike the standard log's field of the same name.
		return fDistributionDomain, true
	case "time-taken":
		return fTimeTaken, true
	case "cs-protocol-version":
		return fCSProtocolVersion, true
	case "cs-user-agent":
		return fCSUserAgent, true
	case "cs-referer":
		return fCSReferer, true
	case "cs-cookie":
		return fCSCookie, true
	case "cs-uri-query":
		return fCSURIQuery, true
	case "x-edge-response-result-type":
		return fEdgeResponseResultType, true
	case "x-forwarded-for":
		return fForwardedFor, true
	case "ssl-protocol":
		return fSSLProtocol, true
	case "ssl-cipher":
		return fSSLCipher, true
	case "x-edge-result-type":
		return fEdgeResultType, true
	case "fle-encrypted-fields":
		return fFLEEncryptedFields, true
	case "fle-status":
		return fFLEStatus, true
	case "sc-content-type":
		return fSCContentType, true
	case "sc-content-len":
		return fSCContentLen, true
	case "sc-range-start":
		return fSCRangeStart, true
	case "sc-range-end":
		return fSCRangeEnd, true
	case "c-port":
		return fCPort, true
	case "x-edge-detailed-result-type":
		return fEdgeDetailedResultType, true
	case "c-country":
		return fCCountry, true
	case "asn":
		return fASN, true
	case "c-ip-version", "cs-accept-encoding", "cs-accept", "cache-behavior-path-pattern",
		"cs-headers", "cs-header-names", "cs-headers-count", "primary-distribution-id",
		"primary-distribution-dns-name", "origin-fbl", "origin-lbl", "sr-reason", "r-host",
		"x-edge-mqcs", "s-ip",
		"cmcd-encoded-bitrate", "cmcd-buffer-length", "cmcd-buffer-starvation",
		"cmcd-content-id", "cmcd-object-duration", "cmcd-deadline", "cmcd-measured-throughput",
		"cmcd-next-object-request", "cmcd-next-range-request", "cmcd-object-type",
		"cmcd-playback-rate", "cmcd-requested-maximum-throughput", "cmcd-streaming-format",
		"cmcd-session-id", "cmcd-stream-type", "cmcd-startup", "cmcd-top-bitrate", "cmcd-version":
		return fIgnored, true
	}
	return fIgnored, false
}

// Errors about layouts. They are returned wrapped with the detail.
var (
	// ErrBadLayout means a field list cannot be used: it is empty, names a
	// field twice, lacks the fields that give the event time, or is not a
	// web distribution's log at all (ErrStreamingLog).
	ErrBadLayout = errors.New("cloudfront: bad field layout")
	// ErrStreamingLog means the input is an RTMP (streaming distribution)
	// log: playback events such as connect, play and stop, not HTTP
	// requests. They are rejected rather than read as requests with status
	// 0. It wraps ErrBadLayout.
	ErrStreamingLog = fmt.Errorf("%w: RTMP streaming distribution log (playback events, not web requests)", ErrBadLayout)
	// ErrUnknownField means a real-time field name is not one CloudFront
	// defines.
	ErrUnknownField = errors.New("cloudfront: unknown real-time field")
)

// Layout is a compiled field list: which column of a line holds which field.
// A Layout is immutable once built and safe for concurrent use.
type Layout struct {
	names    []string
	cols     []field
	standard bool // names equal a historical standard prefix
	epoch    bool // event time comes from timestamp, not date+time
	epochMS  bool // ... and it is timestamp(ms): epoch milliseconds
}

// NewLayout compiles the field names of a standard-log "#Fields:" header, in
// column order. Names are matched case-insensitively; names this package does
// not know are kept as columns and skipped when parsing, so a header with new
// fields still parses. Real-time field names are accepted too (standard
// logging v2 offers some, such as timestamp and c-country, and real-time
// records copied to files get a header of them); a header that spells a
// request header the real-time way (cs-host, cs-user-agent, cs-referer,
// cs-cookie) is read with the real-time meanings, where x-host-header is the
// distribution's domain rather than the viewer's Host header.
//
// It returns an error wrapping ErrBadLayout if names is empty, a known field
// appears twice, or neither date+time nor timestamp (or timestamp(ms)) is
// present, and one wrapping ErrStreamingLog for the header of an RTMP
// streaming distribution log.
func NewLayout(names []string) (*Layout, error) {
	l := &Layout{names: append([]string(nil), names...), cols: make([]field, len(names))}
	realtime := false
	for _, n := range names {
		for _, rt := range realtimeOnlyNames {
			realtime = realtime || strings.EqualFold(n, rt)
		}
		for _, rtmp := range rtmpNames {
			if strings.EqualFold(n, rtmp) {
				return nil, fmt.Errorf("%w: its fields name %s", ErrStreamingLog, rtmp)
			}
		}
	}
	for i, n := range names {
		l.cols[i], _ = standardField(n, realtime)
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	l.standard = isStandardCount(len(names))
	for i, f := range l.cols {
		if f != field(i) {
			l.standard = false
			break
		}
	}
	return l, nil
}

// StandardLayout returns the standard-log layout with n fields: the first n
// fields of the current 33-field header. n must be one of
// StandardFieldCounts; otherwise the error wraps ErrBadLayout.
func StandardLayout(n int) (*Layout, error) {
	l, ok := standardLayout(n)
	if !ok {
		return nil, fmt.Errorf("%w: no standard layout has %d fields (known: %v)", ErrBadLayout, n, StandardFieldCounts())
	}
	return &l, nil
}

// standardLayout is StandardLayout without allocation.
func standardLayout(n int) (Layout, bool) {
	if !isStandardCount(n) {
		return Layout{}, false
	}
	return Layout{names: standardNames[:n:n], cols: standardIDs[:n:n], standard: true}, true
}

// ParseFieldsDirective compiles a "#Fields: a b c" header line (trailing
// newline allowed). Field names are separated by spaces or tabs. The error
// wraps ErrBadLayout if the line is not a #Fields directive or NewLayout
// rejects it.
func ParseFieldsDirective(line []byte) (*Layout, error) {
	s := strings.TrimRight(string(line), "\r\n")
	rest, ok := strings.CutPrefix(s, "#Fields:")
	if !ok {
		return nil, fmt.Errorf("%w: not a #Fields line: %.40q", ErrBadLayout, s)
	}
	return NewLayout(strings.Fields(rest))
}

// check validates the compiled columns.
func (l *Layout) check() error {
	if len(l.cols) == 0 {
		return fmt.Errorf("%w: no fields", ErrBadLayout)
	}
	var seen [fIgnored]bool
	for i, f := range l.cols {
		if f == fIgnored {
			continue
		}
		if seen[f] {
			return fmt.Errorf("%w: field %q appears twice", ErrBadLayout, l.names[i])
		}
		seen[f] = true
	}
	switch {
	case seen[fDate] && seen[fTime]:
	case seen[fTimestamp]:
		l.epoch = true
	case seen[fTimestampMS]:
		l.epoch, l.epochMS = true, true
	default:
		return fmt.Errorf("%w: fields must include date and time (or timestamp)", ErrBadLayout)
	}
	return nil
}

// Fields returns a copy of the field names in column order.
func (l *Layout) Fields() []string { return append([]string(nil), l.names...) }

// Len returns the number of columns.
func (l *Layout) Len() int { return len(l.cols) }

// Standard reports whether l is one of the historical standard layouts (the
// first Len() fields of the current header, in order). A line of a standard
// layout can be sent without its header: its field count identifies it.
func (l *Layout) Standard() bool { return l.standard }

// Directive returns the "#Fields: ..." header line for l, without a newline.
func (l *Layout) Directive() string { return "#Fields: " + strings.Join(l.names, " ") }
