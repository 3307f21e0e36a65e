package searchbulk

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// IndexPattern is a compiled index name pattern such as
// "leasehold-events-{yyyy.MM.dd}": literal text and date formats of the
// event time in UTC. Both search sinks name their indices with it, and
// the retention fallback reads the dates back from the names (Day).
type IndexPattern struct {
	raw    string
	parts  []patternPart
	hourly bool // the pattern uses HH: names change every hour, not every day
}

type patternPart struct {
	literal string // set for literal text
	layout  string // Go layout for a {...} part
}

// ParseIndexPattern compiles "leasehold-events-{yyyy.MM.dd}". Inside braces
// only yyyy, MM, dd, HH and the separators . - _ are allowed. The error
// says what is wrong with s.
func ParseIndexPattern(s string) (IndexPattern, error) {
	p := IndexPattern{raw: s}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			p.parts = append(p.parts, patternPart{literal: rest})
			break
		}
		if open > 0 {
			p.parts = append(p.parts, patternPart{literal: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return p, fmt.Errorf("%q: unclosed {", s)
		}
		layout, hourly, err := dateLayout(rest[open+1 : open+end])
		if err != nil {
			return p, fmt.Errorf("%q: %w", s, err)
		}
		p.hourly = p.hourly || hourly
		p.parts = append(p.parts, patternPart{layout: layout})
		rest = rest[open+end+1:]
	}
	for _, part := range p.parts {
		if strings.ContainsAny(part.literal, "}") {
			return p, fmt.Errorf("%q: } without {", s)
		}
	}
	// Check the names it produces: the earliest and a late date.
	for _, t := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 12, 31, 23, 0, 0, 0, time.UTC)} {
		if n := p.Name(t); !ValidIndexName(n) {
			return p, fmt.Errorf("%q makes %q, not a valid index name (lowercase, at most 255 bytes, no spaces or \\/*?\"<>|,#:, not starting with - _ or +)", s, n)
		}
	}
	return p, nil
}

// dateLayout turns "yyyy.MM.dd" into the Go layout "2006.01.02".
func dateLayout(f string) (layout string, hourly bool, err error) {
	if f == "" {
		return "", false, errors.New("empty {}")
	}
	var b strings.Builder
	for f != "" {
		switch {
		case strings.HasPrefix(f, "yyyy"):
			b.WriteString("2006")
			f = f[4:]
		case strings.HasPrefix(f, "MM"):
			b.WriteString("01")
			f = f[2:]
		case strings.HasPrefix(f, "dd"):
			b.WriteString("02")
			f = f[2:]
		case strings.HasPrefix(f, "HH"):
			b.WriteString("15")
			hourly = true
			f = f[2:]
		case f[0] == '.' || f[0] == '-' || f[0] == '_':
			b.WriteByte(f[0])
			f = f[1:]
		default:
			return "", false, fmt.Errorf("{%s}: only yyyy, MM, dd, HH and . - _ are allowed in braces", f)
		}
	}
	return b.String(), hourly, nil
}

// Name formats the index name for an event time (converted to UTC).
func (p IndexPattern) Name(t time.Time) string {
	return string(p.appendName(nil, t))
}

func (p IndexPattern) appendName(dst []byte, t time.Time) []byte {
	t = t.UTC()
	for _, part := range p.parts {
		if part.layout != "" {
			dst = t.AppendFormat(dst, part.layout)
		} else {
			dst = append(dst, part.literal...)
		}
	}
	return dst
}

// Wildcard is the pattern with every date part replaced by *, for the
// index template's index_patterns.
func (p IndexPattern) Wildcard() string {
	var b strings.Builder
	for _, part := range p.parts {
		if part.layout != "" {
			b.WriteByte('*')
		} else {
			b.WriteString(part.literal)
		}
	}
	return b.String()
}

// TemplateName is the literal prefix without trailing separators.
func (p IndexPattern) TemplateName() string {
	var b strings.Builder
	for _, part := range p.parts {
		if part.layout != "" {
			break
		}
		b.WriteString(part.literal)
	}
	return strings.TrimRight(b.String(), ".-_")
}

// ValidIndexName applies the index name rules OpenSearch and
// Elasticsearch share.
func ValidIndexName(n string) bool {
	if n == "" || len(n) > 255 || n == "." || n == ".." {
		return false
	}
	if strings.ContainsAny(n[:1], "-_+") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c >= 'A' && c <= 'Z' || c <= ' ' || c == 0x7f || strings.IndexByte(`\/*?"<>|,#:`, c) >= 0 {
			return false
		}
	}
	return true
}

// indexNamer caches the last name: a shard's events mostly share a day.
// Not safe for concurrent use.
type indexNamer struct {
	p      IndexPattern
	key    int64 // UTC day (or hour) number of name
	name   []byte
	cached bool
}

func (n *indexNamer) get(t time.Time) []byte {
	sec := t.Unix()
	period := int64(86400)
	if n.p.hourly {
		period = 3600
	}
	key := sec / period
	if sec < 0 && sec%period != 0 {
		key-- // floor division for times before 1970
	}
	if !n.cached || key != n.key {
		n.name = n.p.appendName(n.name[:0], t)
		n.key, n.cached = key, true
	}
	return n.name
}

// Time reads the event time back from an index name the pattern made: the
// start of its day (or hour) in UTC. ok is false for a name the pattern
// does not make, such as another pattern's index that the wildcard also
// matches.
func (p IndexPattern) Time(name string) (t time.Time, ok bool) {
	var layout strings.Builder
	var value strings.Builder
	rest := name
	for _, part := range p.parts {
		if part.layout == "" {
			if !strings.HasPrefix(rest, part.literal) {
				return time.Time{}, false
			}
			rest = rest[len(part.literal):]
			continue
		}
		n := len(part.layout) // every layout element is as long as its value (2006, 01, 02, 15)
		if len(rest) < n {
			return time.Time{}, false
		}
		layout.WriteString(part.layout)
		layout.WriteByte('|')
		value.WriteString(rest[:n])
		value.WriteByte('|')
		rest = rest[n:]
	}
	if rest != "" || layout.Len() == 0 {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(layout.String(), value.String(), time.UTC)
	if err != nil || p.Name(t) != name {
		return time.Time{}, false
	}
	return t, true
}

// DatedSuffix reports whether the pattern's names end in
// "-yyyy.MM.dd", the form Elasticsearch's ILM reads an index's date from
// (index.lifecycle.parse_origination_date).
func (p IndexPattern) DatedSuffix() bool {
	n := len(p.parts)
	return n >= 2 && p.parts[n-1].layout == "2006.01.02" && strings.HasSuffix(p.parts[n-2].literal, "-")
}
