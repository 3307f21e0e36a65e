// Package cloudfront parses CloudFront access logs into event.Event values:
// standard logs (tab-separated files with "#Fields" headers, delivered to S3)
// and real-time logs (tab-separated records without a header, delivered to
// Kinesis in a field order chosen in the real-time log configuration).
//
// The parsers are pure functions of their input: they do no I/O besides the
// io.Reader a Reader is given, keep no global state, never panic on bad input,
// and report a bad line as a *LineError that callers can skip past. See
// docs/EVENTS.md for how each field maps into the event.
package cloudfront

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leasehold/leasehold/event"
)

// Sentinel errors wrapped by LineError.Err.
var (
	// ErrFieldCount means a line has a different number of fields than its
	// layout (for example a truncated line).
	ErrFieldCount = errors.New("cloudfront: wrong field count")
	// ErrBadTime means the date, time or timestamp field does not parse, or
	// gives a date before 1970.
	ErrBadTime = errors.New("cloudfront: bad date or time")
	// ErrBadNumber means sc-bytes, sc-status or time-taken is not a number.
	ErrBadNumber = errors.New("cloudfront: bad number")
	// ErrLineTooLong means a line exceeds the Reader's maximum line length.
	ErrLineTooLong = errors.New("cloudfront: line too long")
	// ErrNoLayout means no layout applies to the line: its field count is not
	// a standard one and no #Fields header gave one, or the last #Fields
	// header was rejected.
	ErrNoLayout = errors.New("cloudfront: no field layout for line")
	// ErrRecord means a Kinesis record is not one log line with optional
	// header lines.
	ErrRecord = errors.New("cloudfront: malformed record")
)

// maxRawInError caps LineError.Raw, so that an error never holds a huge line.
const maxRawInError = 4 << 10

// LineError reports a line that could not be parsed. A Reader returns it and
// goes on with the next line; the error wraps one of the sentinels above.
type LineError struct {
	// Line is the 1-based line number in the Reader's input; 0 when the line
	// was parsed on its own (ParseLine, ParseRecord, RealtimeParser).
	Line int
	// Reason says what is wrong, e.g. "has 31 fields, layout has 33".
	Reason string
	// Raw is the offending line without its newline, cut to 4 KiB.
	Raw string
	// Err is the sentinel (ErrFieldCount, ErrBadTime, ...).
	Err error
}

// Error returns e.g. "cloudfront: line 14: wrong field count: has 31 fields,
// layout has 33".
func (e *LineError) Error() string {
	what := strings.TrimPrefix(e.Err.Error(), "cloudfront: ")
	if e.Line > 0 {
		return fmt.Sprintf("cloudfront: line %d: %s: %s", e.Line, what, e.Reason)
	}
	return fmt.Sprintf("cloudfront: %s: %s", what, e.Reason)
}

// Unwrap returns the sentinel.
func (e *LineError) Unwrap() error { return e.Err }

// lineError builds a LineError, copying at most maxRawInError bytes of raw.
func lineError(lineNo int, raw []byte, sentinel error, format string, args ...any) *LineError {
	if len(raw) > maxRawInError {
		raw = raw[:maxRawInError]
	}
	return &LineError{Line: lineNo, Reason: fmt.Sprintf(format, args...), Raw: string(raw), Err: sentinel}
}

// ParseLine parses one data line (trailing "\n" or "\r\n" allowed) laid out as
// l into an event. It returns a *LineError (with Line 0) if the field count
// differs from l.Len() or a date, time or number does not parse. It does not
// block, does not retain line, and is safe for concurrent use; the event's
// strings share one allocation.
func ParseLine(l *Layout, line []byte) (event.Event, error) {
	return parse(l, line, 0)
}

// span is a substring of the event's backing string.
type span struct{ off, end int32 }

// empty reports whether the span holds no bytes: the field was absent, "-"
// or empty.
func (s span) empty() bool { return s.end <= s.off }

// maxStackCols is the column count up to which column offsets live on the
// stack.
const maxStackCols = 64

// decodeMode says how a field's value is URL-decoded.
func decodeMode(f field) (decode, twice bool) {
	switch f {
	case fCSURIStem, fCSReferer, fCSUserAgent:
		return true, true
	case fCSURIQuery, fSCContentType, fForwardedFor:
		return true, false
	}
	return false, false
}

// parse is ParseLine with a line number for errors.
func parse(l *Layout, raw []byte, lineNo int) (event.Event, error) {
	line := trimEOL(raw)
	if len(line) > math.MaxInt32/2 {
		return event.Event{}, lineError(lineNo, line, ErrLineTooLong, "line is %d bytes", len(line))
	}
	if !utf8.Valid(line) {
		line = appendLatin1Fallback(make([]byte, 0, len(line)+len(line)/2), line)
	}

	// Column boundaries: column i is line[starts[i] : starts[i+1]-1].
	n := len(l.cols)
	var stackStarts [maxStackCols + 1]int32
	starts := stackStarts[:0]
	if n > maxStackCols {
		starts = make([]int32, 0, n+1)
	}
	starts = append(starts, 0)
	grow := len(line)
	for pos := 0; ; {
		j := bytes.IndexByte(line[pos:], '\t')
		if j < 0 {
			break
		}
		pos += j + 1
		if len(starts) == n {
			have := len(starts) + bytes.Count(line[pos:], []byte{'\t'}) + 1
			return event.Event{}, lineError(lineNo, line, ErrFieldCount, "has %d fields, layout has %d", have, n)
		}
		starts = append(starts, int32(pos))
	}
	if len(starts) != n {
		return event.Event{}, lineError(lineNo, line, ErrFieldCount, "has %d fields, layout has %d", len(starts), n)
	}
	starts = append(starts, int32(len(line)+1))
	for i, f := range l.cols {
		if dec, _ := decodeMode(f); dec {
			v := line[starts[i] : starts[i+1]-1]
			if bytes.IndexByte(v, '%') >= 0 {
				grow += len(v) // a Latin-1 fallback (rare) grows the builder
			}
		}
	}

	var (
		b                  strings.Builder
		ev                 event.Event
		date, clock, stamp []byte
		stemQuery          span
		// spans holds each field's value by field id; a field the layout
		// lacks, or "-", stays empty. fIgnored collects the skipped ones.
		spans [fIgnored + 1]span
		nums  optionalNumbers
	)
	b.Grow(grow + 2*hex.EncodedLen(16) + 3)
	b.Write(line)
	var scratchArr [512]byte
	for i, f := range l.cols {
		lo, hi := starts[i], starts[i+1]-1
		v := line[lo:hi]
		if len(v) == 1 && v[0] == '-' {
			continue // "-" is CloudFront's empty value
		}
		sp := span{lo, hi}
		if dec, twice := decodeMode(f); dec && bytes.IndexByte(v, '%') >= 0 {
			if f == fCSURIStem {
				// Real-time logs put the query in cs-uri-stem; a raw '?'
				// ends the path (an encoded one is %3F).
				if q := bytes.IndexByte(v, '?'); q >= 0 {
					stemQuery = appendDecoded(&b, scratchArr[:0], v[q+1:], false)
					v = v[:q]
				}
			}
			sp = appendDecoded(&b, scratchArr[:0], v, twice)
		} else if f == fCSURIStem {
			if q := bytes.IndexByte(v, '?'); q >= 0 {
				stemQuery = span{lo + int32(q) + 1, hi}
				sp = span{lo, lo + int32(q)}
			}
		}
		spans[f] = sp
		var err error
		switch f {
		case fDate:
			date = v
		case fTime:
			clock = v
		case fTimestamp, fTimestampMS:
			stamp = v
		case fSCBytes:
			ev.Bytes, err = parseInt(v, 18)
		case fSCStatus:
			var st int64
			st, err = parseInt(v, 3)
			ev.Status = int(st)
		case fTimeTaken:
			var ms int64
			if ms, err = parseMillis(v); err == nil {
				nums.set(numTimeTaken, ms)
			}
		// The fields below are not needed to place or classify a request:
		// a value that does not parse counts as absent rather than making
		// the whole line bad.
		case fTimeToFirstByte:
			if ms, err := parseMillis(v); err == nil {
				nums.set(numTimeToFirstByte, ms)
			}
		case fSCContentLen:
			if n, err := parseInt(v, 18); err == nil {
				nums.set(numContentLen, n)
			}
		case fSCRangeStart:
			if r, err := parseInt(v, 18); err == nil {
				nums.set(numRangeStart, r)
			}
		case fSCRangeEnd:
			if r, err := parseInt(v, 18); err == nil {
				nums.set(numRangeEnd, r)
			}
		case fCSBytes:
			if n, err := parseInt(v, 18); err == nil {
				ev.RequestBytes = n
			}
		case fCPort:
			if p, err := parseInt(v, 5); err == nil && p <= math.MaxUint16 {
				ev.ClientPort = int(p)
			}
		case fASN:
			if a, err := parseInt(bytes.TrimPrefix(v, []byte("AS")), 10); err == nil && a <= math.MaxUint32 {
				ev.Geo.ASN = uint32(a)
			}
		}
		if err != nil {
			return event.Event{}, lineError(lineNo, line, ErrBadNumber, "%s %q: %v", l.names[i], v, err)
		}
	}

	var err error
	switch {
	case l.epochMS:
		ev.EventTime, err = parseEpochMillis(stamp)
	case l.epoch:
		ev.EventTime, err = parseEpoch(stamp)
	default:
		ev.EventTime, err = parseDateTime(date, clock)
	}
	if err != nil {
		return event.Event{}, lineError(lineNo, line, ErrBadTime, "%v", err)
	}

	// Host: the Host header the viewer sent, else the distribution's domain.
	host := spans[fViewerHost]
	if host.empty() {
		host = spans[fDistributionDomain]
	}
	if hasUpper(line, host) {
		host = appendLower(&b, line, host)
	}
	rid := spans[fEdgeRequestID]
	if rid.empty() || rid.end-rid.off > event.MaxIDBytes {
		// Layouts before 15 fields have no request id (and a corrupt one may
		// be too long for a document id): derive a stable id from the line.
		sum := sha256.Sum256(trimEOL(raw))
		off := int32(b.Len())
		b.WriteString("cf-")
		var hx [32]byte
		hex.Encode(hx[:], sum[:16])
		b.Write(hx[:])
		rid = span{off, int32(b.Len())}
	}

	s := b.String()
	str := func(sp span) string { return s[sp.off:sp.end] }
	ev.Source = event.SourceCloudFront
	ev.EventID = str(rid)
	ev.EdgeLocation = str(spans[fEdgeLocation])
	if a := str(spans[fCIP]); a != "" {
		if _, err := netip.ParseAddr(a); err == nil {
			ev.ClientIP = a
		}
	}
	ev.Method = str(spans[fCSMethod])
	ev.URI = str(spans[fCSURIStem])
	ev.Referrer = str(spans[fCSReferer])
	ev.ReferringDomain = event.ReferringDomain(ev.Referrer)
	ev.UserAgent = cleanUserAgent(str(spans[fCSUserAgent]))
	ev.Query = str(spans[fCSURIQuery])
	if ev.Query == "" {
		ev.Query = str(stemQuery)
	}
	ev.Host = str(host)
	ev.CacheResult = str(spans[fEdgeResultType])
	ev.Protocol = str(spans[fCSProtocol])
	ev.ProtocolVersion = str(spans[fCSProtocolVersion])
	ev.TLSProtocol = str(spans[fSSLProtocol])
	ev.TLSCipher = str(spans[fSSLCipher])
	ev.EdgeResponseResult = str(spans[fEdgeResponseResultType])
	ev.EdgeDetailedResult = str(spans[fEdgeDetailedResultType])
	ev.ContentType = str(spans[fSCContentType])
	ev.Geo.CountryISO = str(spans[fCCountry])
	ev.ForwardedFor = splitList(str(spans[fForwardedFor]))
	nums.fill(&ev)
	rangeStart := int64(-1)
	if ev.RangeStart != nil {
		rangeStart = *ev.RangeStart
	}
	ev.EventType = Classify(ev.Method, ev.URI, ev.Query, ev.Status, rangeStart)
	return ev, nil
}

// The optional numbers of an event, by index in optionalNumbers.
const (
	numTimeTaken = iota
	numTimeToFirstByte
	numContentLen
	numRangeStart
	numRangeEnd
	numOptional
)

// optionalNumbers collects the numeric fields whose absence must be told
// from zero (the event holds them as pointers). fill allocates them in one
// block, so that a line costs one allocation more, not one per field.
type optionalNumbers struct {
	v   [numOptional]int64
	has [numOptional]bool
	any bool
}

// set records field i's value.
func (o *optionalNumbers) set(i int, v int64) { o.v[i], o.has[i], o.any = v, true, true }

// fill points the event's optional numbers at the values that were set.
func (o *optionalNumbers) fill(ev *event.Event) {
	if !o.any {
		return
	}
	block := new([numOptional]int64)
	*block = o.v
	ptr := func(i int) *int64 {
		if !o.has[i] {
			return nil
		}
		return &block[i]
	}
	ev.TimeTakenMS = ptr(numTimeTaken)
	ev.TimeToFirstByteMS = ptr(numTimeToFirstByte)
	ev.ContentLength = ptr(numContentLen)
	ev.RangeStart = ptr(numRangeStart)
	ev.RangeEnd = ptr(numRangeEnd)
}

// appendDecoded URL-decodes v into the builder and returns the span it
// occupies. Bytes the decoding produced that are not valid UTF-8 are read
// as Windows-1252 (see appendLatin1Fallback), so that "%E9" keeps its "é".
func appendDecoded(b *strings.Builder, scratch, v []byte, twice bool) span {
	d := appendUnescape(scratch, v, twice)
	off := int32(b.Len())
	if utf8.Valid(d) {
		b.Write(d)
	} else {
		writeLatin1Fallback(b, d)
	}
	return span{off, int32(b.Len())}
}

// writeLatin1Fallback writes d to b with appendLatin1Fallback. It is apart
// from appendDecoded so that its buffer costs nothing on the common path.
//
//go:noinline
func writeLatin1Fallback(b *strings.Builder, d []byte) {
	var buf [512]byte
	b.Write(appendLatin1Fallback(buf[:0], d))
}

// hasUpper reports whether line[sp] has an ASCII upper-case letter.
func hasUpper(line []byte, sp span) bool {
	if int(sp.end) > len(line) {
		return false // a decoded span; hosts are never decoded
	}
	for _, c := range line[sp.off:sp.end] {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// appendLower writes line[sp] lower-cased to the builder.
func appendLower(b *strings.Builder, line []byte, sp span) span {
	off := int32(b.Len())
	for _, c := range line[sp.off:sp.end] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return span{off, int32(b.Len())}
}

// cleanUserAgent drops a stray "User-Agent:" prefix that some clients send as
// part of the header value.
func cleanUserAgent(ua string) string {
	const prefix = "user-agent:"
	if len(ua) >= len(prefix) && strings.EqualFold(ua[:len(prefix)], prefix) {
		return strings.TrimLeft(ua[len(prefix):], " \t")
	}
	return ua
}

// splitList splits a comma-separated list, trimming spaces and dropping empty
// entries. It returns nil for an empty list.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	out := make([]string, 0, strings.Count(s, ",")+1)
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// trimEOL removes a trailing "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// parseInt parses an unsigned decimal of at most maxDigits digits.
func parseInt(v []byte, maxDigits int) (int64, error) {
	if len(v) == 0 {
		return 0, errors.New("empty")
	}
	if len(v) > maxDigits {
		return 0, fmt.Errorf("more than %d digits", maxDigits)
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// parseMillis parses seconds with an optional fraction ("0.238") into
// milliseconds, rounding half up.
func parseMillis(v []byte) (int64, error) {
	whole, frac, _ := bytes.Cut(v, []byte{'.'})
	sec, err := parseInt(whole, 12)
	if err != nil {
		return 0, err
	}
	var ms int64
	for i, c := range frac {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
		switch {
		case i < 3:
			ms = ms*10 + int64(c-'0')
		case i == 3 && c >= '5':
			ms++
		}
	}
	for i := len(frac); i < 3; i++ {
		ms *= 10
	}
	return sec*1000 + ms, nil
}

// parseDateTime parses standard-log "YYYY-MM-DD" and "HH:MM:SS" (UTC).
func parseDateTime(date, clock []byte) (time.Time, error) {
	if len(date) != 10 || date[4] != '-' || date[7] != '-' {
		return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD", date)
	}
	if len(clock) != 8 || clock[2] != ':' || clock[5] != ':' {
		return time.Time{}, fmt.Errorf("time %q is not HH:MM:SS", clock)
	}
	y, e1 := parseInt(date[:4], 4)
	mo, e2 := parseInt(date[5:7], 2)
	d, e3 := parseInt(date[8:], 2)
	h, e4 := parseInt(clock[:2], 2)
	mi, e5 := parseInt(clock[3:5], 2)
	sec, e6 := parseInt(clock[6:], 2)
	if err := errors.Join(e1, e2, e3, e4, e5, e6); err != nil {
		return time.Time{}, fmt.Errorf("date %q time %q: %w", date, clock, err)
	}
	if y < 1970 || mo < 1 || mo > 12 || d < 1 || d > int64(daysIn(time.Month(mo), int(y))) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("date %q time %q is out of range", date, clock)
	}
	return time.Date(int(y), time.Month(mo), int(d), int(h), int(mi), int(sec), 0, time.UTC), nil
}

// daysIn returns the number of days in month m of year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// maxEpochSeconds is 9999-12-31T23:59:59Z, the last instant JSON time
// encoding accepts.
const maxEpochSeconds = 253402300799

// parseEpoch parses real-time "1575493351.123": Unix seconds with an optional
// fraction.
func parseEpoch(v []byte) (time.Time, error) {
	if len(v) == 0 {
		return time.Time{}, errors.New("timestamp is empty")
	}
	whole, frac, _ := bytes.Cut(v, []byte{'.'})
	sec, err := parseInt(whole, 12)
	if err != nil || sec > maxEpochSeconds || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("timestamp %q is not epoch seconds", v)
	}
	var ns int64
	for _, c := range frac {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("timestamp %q is not epoch seconds", v)
		}
		ns = ns*10 + int64(c-'0')
	}
	for i := len(frac); i < 9; i++ {
		ns *= 10
	}
	return time.Unix(sec, ns).UTC(), nil
}

// parseEpochMillis parses "1575493351123": Unix milliseconds, the
// timestamp(ms) field.
func parseEpochMillis(v []byte) (time.Time, error) {
	ms, err := parseInt(v, 15)
	if err != nil || ms/1000 > maxEpochSeconds {
		return time.Time{}, fmt.Errorf("timestamp(ms) %q is not epoch milliseconds", v)
	}
	return time.UnixMilli(ms).UTC(), nil
}
