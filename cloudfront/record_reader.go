package cloudfront

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
)

// ErrCorrupt means a log object's compressed stream is corrupt or truncated:
// a bad gzip header, a checksum mismatch, bad deflate data, or an end of
// input inside a gzip member. Reading the object again will not help. It is
// wrapped by RecordReader.Next, with the cause.
var ErrCorrupt = errors.New("cloudfront: corrupt or truncated compressed stream")

// Compression says how a RecordReader decodes its input.
type Compression int

const (
	// AutoCompression decompresses gzip when the input starts with the gzip
	// magic bytes and reads it as plain text otherwise.
	AutoCompression Compression = iota
	// Gzip requires gzip: any other input is ErrCorrupt. Use it for ".gz"
	// objects, so that garbage is reported instead of sent as lines.
	Gzip
	// Plain reads the input as plain text.
	Plain
)

// MaxIngestLineBytes is the default longest line a RecordReader forwards:
// 1 MiB less 16 KiB of room for a #Fields header and the partition key.
const MaxIngestLineBytes = 1<<20 - 16<<10

// LogRecord is one data line of a log file, ready to put into Kinesis.
type LogRecord struct {
	// Line is the line's 1-based number in the decompressed file, header
	// lines included (see Reader.Line): the resume offset.
	Line int
	// PartitionKey is the line's x-edge-request-id when it has a usable one
	// (1 to 256 printable ASCII characters other than "-"), else "h-" and
	// the 64-bit FNV-1a hash of the line in hex. Either way the same line
	// always gets the same key, so a line sent twice lands on one shard.
	PartitionKey string
	// Data is the record data built by AppendRecord. It is valid only until
	// the next call to Next.
	Data []byte
	// Malformed reports a line whose field count does not match its layout
	// (for example a truncated line). It is still returned: the consumer
	// reports it with the raw line (see ParseRecord), so nothing is lost.
	Malformed bool
}

// RecordReader turns a CloudFront standard log object, gzipped or not, into
// Kinesis records, one per data line, in constant memory whatever the
// object's size. It decompresses as a stream, reads lines with a Reader,
// builds each record with AppendRecord and picks its partition key.
//
// When the input ends abnormally (a transport error, a corrupt or truncated
// gzip stream) the partial line the data ended in is dropped rather than
// returned: only complete lines are ever forwarded.
//
// A RecordReader is not safe for concurrent use.
type RecordReader struct {
	src     *countingReader
	gz      *gzip.Reader
	guard   *lineGuard
	lines   *Reader
	comp    Compression
	maxLine int
	layout  *Layout // of the lines before the first #Fields header; nil: inferred
	err     error   // sticky final error, set by open or Next

	buf      []byte  // record data, reused
	keyCol   int     // x-edge-request-id column of keyFor, -1 if none
	keyFor   *Layout // layout keyCol was computed for
	keyKnown bool
	rawBytes int64 // decompressed bytes of lines returned or skipped
}

// NewRecordReader returns a RecordReader of r. It does not read until the
// first call to Next. Every option applies: WithCompression (default
// AutoCompression), WithMaxLineBytes (default MaxIngestLineBytes, which
// keeps every record — line, optional #Fields header and partition key —
// within the 1 MiB Kinesis record limit) and WithLayout.
func NewRecordReader(r io.Reader, opts ...Option) *RecordReader {
	o := options{maxLine: MaxIngestLineBytes}
	o.apply(opts)
	return &RecordReader{src: &countingReader{r: r}, comp: o.comp, maxLine: o.maxLine, layout: o.layout}
}

// open detects the compression and builds the reader chain:
// source → counter → [gzip] → line guard → line Reader.
func (rr *RecordReader) open() error {
	br := bufio.NewReaderSize(rr.src, 32<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return rr.sourceOr(err)
	}
	isGzip := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	var dec io.Reader = br
	switch {
	case rr.comp == Gzip && len(magic) == 0:
		// An empty object: no lines, nothing corrupt.
	case rr.comp == Gzip && !isGzip:
		return fmt.Errorf("%w: not gzip data (starts with %q)", ErrCorrupt, magic)
	case isGzip && rr.comp != Plain:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return rr.sourceOr(err)
		}
		rr.gz = zr
		dec = zr
	}
	rr.guard = &lineGuard{r: dec, max: rr.maxLine + 2}
	rr.lines = NewReader(rr.guard, WithMaxLineBytes(rr.maxLine), WithLayout(rr.layout))
	return nil
}

// Next returns the next data line as a record. At the end of the input it
// returns io.EOF. A line that cannot be sent (longer than the maximum)
// yields a *LineError: count it and call Next again. Any other error is
// final: it wraps ErrBadLayout for a #Fields header that cannot be used
// (ErrStreamingLog for an RTMP log's header), since none of the lines after
// it could be sent; ErrCorrupt for a corrupt or truncated compressed stream;
// else it is the underlying reader's error (typically a network error:
// reading the object again may succeed). Next blocks while the underlying
// reader blocks.
func (rr *RecordReader) Next() (LogRecord, error) {
	if rr.err != nil {
		return LogRecord{}, rr.err
	}
	if rr.lines == nil {
		if err := rr.open(); err != nil {
			rr.err = err
			return LogRecord{}, err
		}
	}
	line, l, err := rr.lines.ReadLine()
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			if herr := rr.lines.HeaderError(); herr != nil {
				// Every line after an unusable header would be unsendable:
				// skipping them one by one would end the file as if it
				// had been read, with nothing sent.
				rr.err = fmt.Errorf("cloudfront: line %d: the #Fields header cannot be used, so the lines after it cannot be read: %w", le.Line, herr)
				return LogRecord{Line: le.Line}, rr.err
			}
			return LogRecord{Line: le.Line}, err
		}
		if errors.Is(err, io.EOF) {
			rr.err = io.EOF
		} else {
			rr.err = rr.sourceOr(err)
		}
		return LogRecord{}, rr.err
	}
	rr.rawBytes += int64(len(line)) + 1
	rr.buf = AppendRecord(rr.buf[:0], l, line)
	fields := bytes.Count(line, []byte{'\t'}) + 1
	malformed := (l == nil && !isStandardCount(fields)) || (l != nil && fields != l.Len())
	return LogRecord{Line: rr.lines.Line(), PartitionKey: rr.partitionKey(l, line), Data: rr.buf, Malformed: malformed}, nil
}

// Line returns the number of the last line read (see Reader.Line).
func (rr *RecordReader) Line() int {
	if rr.lines == nil {
		return 0
	}
	return rr.lines.Line()
}

// BytesRead returns how many bytes of the underlying (compressed) input
// have been consumed so far.
func (rr *RecordReader) BytesRead() int64 { return rr.src.n }

// RawBytesRead returns the decompressed size of the data lines returned so
// far, newlines included.
func (rr *RecordReader) RawBytesRead() int64 { return rr.rawBytes }

// DroppedBytes returns the length of the partial line dropped when the
// input ended abnormally; 0 otherwise.
func (rr *RecordReader) DroppedBytes() int {
	if rr.guard == nil {
		return 0
	}
	return rr.guard.dropped
}

// sourceOr classifies a read error: the underlying reader's own error when
// it failed (the stream was cut: reading again may succeed), else the error
// came from decoding data the input delivered in full, which is corrupt:
// it wraps ErrCorrupt (permanent).
func (rr *RecordReader) sourceOr(err error) error {
	if rr.src.err != nil && !errors.Is(rr.src.err, io.EOF) {
		return rr.src.err
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// partitionKey returns the line's x-edge-request-id, or a hash of the line.
func (rr *RecordReader) partitionKey(l *Layout, line []byte) string {
	if !rr.keyKnown || rr.keyFor != l {
		rr.keyFor, rr.keyKnown, rr.keyCol = l, true, requestIDColumn(l)
	}
	if rr.keyCol >= 0 {
		if v := column(line, rr.keyCol); usableKey(v) {
			return string(v)
		}
	}
	h := fnv.New64a()
	h.Write(line)
	return "h-" + strconv.FormatUint(h.Sum64(), 16)
}

// requestIDColumn returns the column of x-edge-request-id in l; for nil (a
// standard layout, a prefix of the 33-field one) it is column 14, present
// in every standard layout of 15 fields or more.
func requestIDColumn(l *Layout) int {
	if l == nil {
		return int(fEdgeRequestID)
	}
	for i, f := range l.cols {
		if f == fEdgeRequestID {
			return i
		}
	}
	return -1
}

// column returns the i-th tab-separated field of line, or nil.
func column(line []byte, i int) []byte {
	for ; i > 0; i-- {
		j := bytes.IndexByte(line, '\t')
		if j < 0 {
			return nil
		}
		line = line[j+1:]
	}
	if j := bytes.IndexByte(line, '\t'); j >= 0 {
		line = line[:j]
	}
	return line
}

// usableKey reports whether v can be a partition key as is: 1 to 256
// printable ASCII characters, and not the "-" of an empty field.
func usableKey(v []byte) bool {
	if len(v) == 0 || len(v) > 256 || (len(v) == 1 && v[0] == '-') {
		return false
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// countingReader counts bytes and remembers the underlying reader's own
// error, so a cut stream can be told from corrupt data.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// lineGuard passes data on only up to the last newline it has seen, until
// the input ends: on a clean end it releases the rest (a last line without
// a newline), on an error it drops it, so a stream cut in the middle of a
// line never yields a partial line. A line longer than max is passed on
// unguarded (the line Reader rejects it as too long anyway).
type lineGuard struct {
	r       io.Reader
	max     int
	buf     []byte // read, not yet returned
	safe    int    // buf[:safe] may be returned
	err     error  // the input's error, returned once buf is drained
	dropped int    // bytes dropped at an abnormal end
}

func (g *lineGuard) Read(p []byte) (int, error) {
	for g.safe == 0 {
		if g.err != nil {
			if errors.Is(g.err, io.EOF) && len(g.buf) > 0 {
				g.safe = len(g.buf) // the last line had no newline
				break
			}
			if len(g.buf) > 0 {
				g.dropped, g.buf = len(g.buf), g.buf[:0]
			}
			return 0, g.err
		}
		if len(g.buf) == cap(g.buf) {
			if cap(g.buf) >= g.max {
				g.safe = len(g.buf) // an over-long line: let the Reader reject it
				break
			}
			g.buf = append(make([]byte, 0, min(max(2*cap(g.buf), 64<<10), g.max)), g.buf...)
		}
		n, err := g.r.Read(g.buf[len(g.buf):cap(g.buf)])
		g.buf = g.buf[:len(g.buf)+n]
		g.err = err
		if i := bytes.LastIndexByte(g.buf, '\n'); i >= 0 {
			g.safe = i + 1
		}
	}
	n := copy(p, g.buf[:g.safe])
	g.safe -= n
	rest := copy(g.buf, g.buf[n:])
	g.buf = g.buf[:rest]
	return n, nil
}
