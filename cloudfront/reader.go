package cloudfront

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/leasehold/leasehold/event"
)

// DefaultMaxLineBytes is the default longest line a Reader accepts. Real lines
// are a few hundred bytes; a cookie-laden one may reach tens of KiB.
const DefaultMaxLineBytes = 1 << 20

// readBufferBytes is the Reader's buffer; longer lines are assembled in a
// second buffer that grows up to the maximum line length.
const readBufferBytes = 64 << 10

// Reader reads a standard log file (uncompressed: wrap a .gz object in
// gzip.NewReader first) line by line in constant memory. "#Fields:" headers
// set the layout of the lines after them, so a header change in the middle of
// a stream applies from the next line; "#Version:" and other comment lines are
// skipped, as are blank lines.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br       *bufio.Reader
	max      int
	layout   *Layout // nil: infer from the field count
	rejected error   // why the last #Fields header was rejected; nil if it was not
	line     int     // physical lines read
	long     []byte  // assembles lines longer than the read buffer
	err      error   // sticky: io.EOF or the read error
}

// NewReader returns a Reader of r. Of the options, WithMaxLineBytes
// (default DefaultMaxLineBytes) and WithLayout apply; WithCompression does
// not (a Reader reads plain text).
func NewReader(r io.Reader, opts ...Option) *Reader {
	o := options{maxLine: DefaultMaxLineBytes}
	o.apply(opts)
	return &Reader{br: bufio.NewReaderSize(r, readBufferBytes), max: o.maxLine, layout: o.layout}
}

// Line returns the 1-based number of the last line read, header lines
// included; 0 before the first read. To resume a file after a crash, record
// Line after each handled result, then read the file again from the start
// and skip results until Line passes the recorded number (headers before it
// still apply, which is why the file is re-read rather than sought into).
func (r *Reader) Line() int { return r.line }

// HeaderError returns why the last #Fields header was rejected (an error
// wrapping ErrBadLayout), or nil when it was not or there was none. Lines
// after a rejected header cannot be read until the next usable header.
func (r *Reader) HeaderError() error { return r.rejected }

// Layout returns the layout set by the last #Fields header (or WithLayout),
// or nil if lines are laid out by their field count.
func (r *Reader) Layout() *Layout { return r.layout }

// Next reads and parses the next data line. At the end of the input it
// returns io.EOF. A bad line (wrong field count, bad date or number, too long,
// a rejected header) yields a *LineError: the caller may log or dead-letter
// it and call Next again. Any other error comes from the underlying reader
// and is final. Next blocks while the underlying reader blocks.
func (r *Reader) Next() (event.Event, error) {
	line, l, err := r.ReadLine()
	if err != nil {
		return event.Event{}, err
	}
	if l != nil {
		return parse(l, line, r.line)
	}
	inferred, err := inferLayout(line, r.line, "no #Fields header precedes it")
	if err != nil {
		return event.Event{}, err
	}
	return parse(&inferred, line, r.line)
}

// headerError reports a rejected #Fields header line: a *LineError whose
// sentinel is ErrStreamingLog for an RTMP log's header, else ErrBadLayout.
func headerError(lineNo int, line []byte, err error) *LineError {
	sentinel := ErrBadLayout
	if errors.Is(err, ErrStreamingLog) {
		sentinel = ErrStreamingLog
	}
	return lineError(lineNo, line, sentinel, "%s", strings.TrimPrefix(err.Error(), sentinel.Error()+": "))
}

// inferLayout returns the standard layout with line's field count, or a
// *LineError: ErrStreamingLog for what looks like an RTMP log line,
// ErrFieldCount for any other count. why ends the ErrFieldCount reason.
func inferLayout(line []byte, lineNo int, why string) (Layout, error) {
	n := bytes.Count(line, []byte{'\t'}) + 1
	if l, ok := standardLayout(n); ok {
		return l, nil
	}
	if looksLikeRTMP(line, n) {
		return Layout{}, lineError(lineNo, line, ErrStreamingLog,
			"has the 17 fields of an RTMP log line, with the playback event %q", column(line, 4))
	}
	return Layout{}, lineError(lineNo, line, ErrFieldCount,
		"has %d fields, which is no standard layout %v, and %s", n, StandardFieldCounts(), why)
}

// looksLikeRTMP reports whether a line of n fields is an RTMP streaming
// distribution log line: 17 fields, the fifth an RTMP event (connect, play,
// stop, ...) and the seventh the x-cf-status "OK".
func looksLikeRTMP(line []byte, n int) bool {
	if n != 17 {
		return false
	}
	switch string(column(line, 4)) {
	case "connect", "play", "stop", "pause", "unpause", "seek", "disconnect":
		return true
	}
	return false
}

// ReadLine returns the next data line without parsing it, with the layout
// that applies to it (nil: infer from the field count, as ParseRecord does).
// This is what an ingester needs to forward lines (see AppendRecord). The
// line has no trailing newline and is valid only until the next call. Errors
// are as for Next.
func (r *Reader) ReadLine() (line []byte, l *Layout, err error) {
	for {
		raw, tooLong, err := r.readPhysical()
		if err != nil {
			return nil, nil, err
		}
		if tooLong {
			return nil, nil, lineError(r.line, raw, ErrLineTooLong, "longer than %d bytes", r.max)
		}
		line := trimEOL(raw)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '#' {
			if !bytes.HasPrefix(line, []byte("#Fields:")) {
				continue // #Version and other comments
			}
			l, err := ParseFieldsDirective(line)
			if err != nil {
				r.layout, r.rejected = nil, err
				return nil, nil, headerError(r.line, line, err)
			}
			r.layout, r.rejected = l, nil
			continue
		}
		if r.rejected != nil {
			return nil, nil, lineError(r.line, line, ErrNoLayout, "the last #Fields header was rejected: %s", strings.TrimPrefix(r.rejected.Error(), "cloudfront: "))
		}
		return line, r.layout, nil
	}
}

// readPhysical returns the next line including its newline. tooLong reports a
// line longer than r.max, of which only a prefix is returned; the rest has
// been consumed.
func (r *Reader) readPhysical() (line []byte, tooLong bool, err error) {
	if r.err != nil {
		return nil, false, r.err
	}
	line, err = r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.br.ReadSlice('\n')
			if !tooLong && len(r.long)+len(line) > r.max+2 {
				tooLong = true
				if len(r.long) > maxRawInError {
					r.long = r.long[:maxRawInError]
				}
			}
			if !tooLong {
				r.long = append(r.long, line...)
			}
		}
		line = r.long
	}
	if err != nil {
		r.err = err
		if len(line) == 0 {
			return nil, false, err
		}
		// The last line had no newline: return it now, the error next time.
	}
	r.line++
	if !tooLong && len(trimEOL(line)) > r.max {
		tooLong = true
	}
	return line, tooLong, nil
}
