package cloudfront

import (
	"bytes"

	"github.com/leasehold/leasehold/event"
)

// A Kinesis record that carries a standard-log line holds, as its data:
//
//	[#Fields: f1 f2 ...\n]<one log line>[\n]
//
// The header is present only when the line's layout is not one of the
// standard layouts. Every standard layout is a prefix of the current 33-field
// header, and no two have the same length, so a line's field count identifies
// its layout exactly: the field count is the layout hint. AppendRecord sends
// the header whenever the count would not identify the layout (custom field
// sets, or a line whose count does not match its header, which the consumer
// must then report rather than misread).

// AppendRecord appends the Kinesis record data for line, laid out as l (nil:
// a standard layout identified by the field count), and returns the extended
// slice. A trailing newline on line is dropped. It does not block and is safe
// for concurrent use.
func AppendRecord(dst []byte, l *Layout, line []byte) []byte {
	line = trimEOL(line)
	if l != nil && !(l.Standard() && bytes.Count(line, []byte{'\t'})+1 == l.Len()) {
		dst = append(dst, l.Directive()...)
		dst = append(dst, '\n')
	}
	return append(dst, line...)
}

// ParseRecord parses the data of a Kinesis record written by AppendRecord:
// optional header lines ("#Fields:" sets the layout; "#Version:" and other
// comments are ignored) followed by exactly one log line. Without a #Fields
// header the layout is the standard one with the line's field count. Errors are
// *LineError values (Line 0): ErrRecord if there is not exactly one log line,
// ErrBadLayout for a rejected header, ErrFieldCount if no layout fits, and the
// errors of ParseLine. It does not block, does not retain data, and is safe
// for concurrent use. A record with a #Fields header costs one header
// compilation (a few allocations) more than one without.
func ParseRecord(data []byte) (event.Event, error) {
	var (
		l     *Layout
		line  []byte
		lines int
	)
	for rest := data; len(rest) > 0; {
		var cur []byte
		cur, rest, _ = bytes.Cut(rest, []byte{'\n'})
		cur = trimEOL(cur)
		switch {
		case len(bytes.TrimSpace(cur)) == 0:
		case bytes.HasPrefix(cur, []byte("#Fields:")):
			var err error
			if l, err = ParseFieldsDirective(cur); err != nil {
				return event.Event{}, headerError(0, cur, err)
			}
		case cur[0] == '#':
		default:
			line = cur
			lines++
		}
	}
	if lines != 1 {
		return event.Event{}, lineError(0, data, ErrRecord, "holds %d log lines, want 1", lines)
	}
	if l != nil {
		return parse(l, line, 0)
	}
	inferred, err := inferLayout(line, 0, "the record has no #Fields header")
	if err != nil {
		return event.Event{}, err
	}
	return parse(&inferred, line, 0)
}
