package localrun

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// maxLineBytes is the longest line read as one record; a longer one is
// dead-lettered. It is what the ingester can put into one Kinesis record.
const maxLineBytes = cloudfront.MaxIngestLineBytes

// errLineTooLong is the reason a too-long line of an NDJSON or real-time
// input is dead-lettered.
var errLineTooLong = errors.New("localrun: line too long for a record")

// openInput opens a file, or stdin for "-", and decompresses it when it
// starts with the gzip magic bytes (whatever its name).
func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	var raw io.Reader
	closeFn := func() {}
	if name == "-" {
		if stdin == nil {
			return nil, nil, errors.New("no stdin")
		}
		raw = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		raw, closeFn = f, func() { f.Close() }
	}
	br := bufio.NewReaderSize(raw, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		closeFn()
		return nil, nil, err
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return bufio.NewReaderSize(zr, 64<<10), func() { zr.Close(); closeFn() }, nil
	}
	return br, closeFn, nil
}

// recordSource cuts one input into Kinesis-like records: for a CloudFront
// standard log exactly as the ingester does (cloudfront.RecordReader), for
// NDJSON and real-time logs one record per line. Records are numbered by
// line: the record's sequence number is its line number in the input.
type recordSource struct {
	shard string
	kind  recordKind
	br    *bufio.Reader
	rr    *cloudfront.RecordReader
	line  int
	now   time.Time
}

func newRecordSource(r io.Reader, p plan, shard string) *recordSource {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &recordSource{shard: shard, kind: p.kind, br: br, now: time.Now().UTC()}
}

// next returns the next record, or a message to dead-letter for a line
// that cannot be a record, or an error: io.EOF at the end, anything else
// means the input cannot be read further (a read error, corrupt gzip data,
// a #Fields header that cannot be used).
func (s *recordSource) next() (worker.Record, *processors.Message, error) {
	if s.kind == kindSniff {
		s.kind = s.sniff()
	}
	if s.kind == kindStandard {
		return s.nextStandard()
	}
	return s.nextLine()
}

// sniff decides by the first non-blank character: '{' is NDJSON.
func (s *recordSource) sniff() recordKind {
	for n := 1; n <= 4096; n *= 2 {
		b, err := s.br.Peek(n)
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 {
			if t[0] == '{' {
				return kindLines
			}
			return kindStandard
		}
		if err != nil {
			break
		}
	}
	return kindStandard
}

func (s *recordSource) nextStandard() (worker.Record, *processors.Message, error) {
	if s.rr == nil {
		s.rr = cloudfront.NewRecordReader(s.br, cloudfront.WithCompression(cloudfront.Plain))
	}
	rec, err := s.rr.Next()
	var le *cloudfront.LineError
	if errors.As(err, &le) {
		m := &processors.Message{Record: s.record(le.Line, "", []byte(le.Raw))}
		m.Fail("read", 1, le)
		return worker.Record{}, m, nil
	}
	if err != nil {
		return worker.Record{}, nil, err
	}
	return s.record(rec.Line, rec.PartitionKey, bytes.Clone(rec.Data)), nil, nil
}

func (s *recordSource) nextLine() (worker.Record, *processors.Message, error) {
	for {
		line, tooLong, err := s.readLine()
		if err != nil {
			return worker.Record{}, nil, err
		}
		s.line++
		if tooLong {
			m := &processors.Message{Record: s.record(s.line, "", line)}
			m.Fail("read", 1, fmt.Errorf("%w: longer than %d bytes", errLineTooLong, maxLineBytes))
			return worker.Record{}, m, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return s.record(s.line, "", line), nil, nil
	}
}

// readLine returns the next line without its newline (a copy). A line
// longer than maxLineBytes is consumed whole and returned cut, with
// tooLong set.
func (s *recordSource) readLine() (line []byte, tooLong bool, err error) {
	for {
		chunk, err := s.br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxLineBytes+2 {
			line = append(line, chunk...)
		} else {
			tooLong = true
			if len(line) < 4<<10 {
				line = append(line, chunk[:min(len(chunk), 4<<10)]...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, tooLong || len(line) > maxLineBytes, nil
	}
}

// record builds the record of an input's line.
func (s *recordSource) record(line int, key string, data []byte) worker.Record {
	return worker.Record{StreamName: StreamName, ShardID: s.shard, SequenceNumber: strconv.Itoa(line),
		PartitionKey: key, Data: data, ArrivalTime: s.now}
}
