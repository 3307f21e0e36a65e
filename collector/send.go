package collector

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/producer"
)

// ErrIncomplete is wrapped by Send's error when some lines were invalid
// or some events could not be written; the Report counts them.
var ErrIncomplete = errors.New("collector: not every line was sent")

// SendConfig tunes Send.
type SendConfig struct {
	// PartitionBy picks the partition key. Default (empty) ByAssetID.
	PartitionBy PartitionBy
	// Problems receives one line of text per invalid line ("line 3:
	// event_type: ...") and per event not sent ("line 9 (event_id e-9):
	// not sent: ..."). Writes are serialised. nil discards them.
	Problems io.Writer
	// CloseGrace bounds sending what is buffered once the input ends or
	// ctx ends. Default (0) 30 s.
	CloseGrace time.Duration
}

// Report summarises a Send.
type Report struct {
	Lines          int           // non-blank lines read
	Invalid        int           // lines that failed validation (not sent)
	Sent           int           // events written to Kinesis
	Unsent         int           // valid events that could not be written
	KinesisRecords uint64        // Kinesis records written (fewer than Sent with aggregation)
	Elapsed        time.Duration // from the first read to the last outcome
}

// Rate is events written per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// String is a one-line summary for people.
func (r Report) String() string {
	return fmt.Sprintf("sent %d events (%d Kinesis records) in %s, %.0f events/s; %d invalid lines, %d events not sent",
		r.Sent, r.KinesisRecords, r.Elapsed.Round(time.Millisecond), r.Rate(), r.Invalid, r.Unsent)
}

// sendMeta rides on each record to its Result.
type sendMeta struct {
	line int
	id   string
}

// Send reads NDJSON app events from in, validates each line with
// appevent.Parse, and writes the valid ones to stream through a producer
// built from client and opts (WithResultHandler in opts is overridden).
// Invalid lines are reported to cfg.Problems with their line number and
// skipped; blank lines are ignored. Reading waits while the producer's
// buffer is full (the Block policy), so a large file streams in bounded
// memory. It blocks until every event has an outcome.
//
// When ctx ends, Send stops reading and still sends what it buffered,
// within cfg.CloseGrace. It returns the Report and: nil when every line was
// sent; an error wrapping ErrIncomplete when some were invalid or unsent;
// ctx's cause or the read error, wrapped, when reading stopped early (the
// Report then covers the lines read).
func Send(ctx context.Context, client producer.KinesisAPI, stream string, in io.Reader, cfg SendConfig, opts ...producer.Option) (Report, error) {
	by := cfg.PartitionBy
	if by == "" {
		by = ByAssetID
	}
	if err := by.Validate(); err != nil {
		return Report{}, err
	}
	grace := cfg.CloseGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	var mu sync.Mutex // guards the writes to cfg.Problems and rep.Sent/Unsent
	var rep Report
	problem := func(format string, args ...any) {
		if cfg.Problems != nil {
			fmt.Fprintf(cfg.Problems, format+"\n", args...)
		}
	}
	onResult := func(res producer.Result) {
		mu.Lock()
		defer mu.Unlock()
		if res.Err == nil {
			rep.Sent++
			return
		}
		rep.Unsent++
		m, _ := res.Record.Meta.(sendMeta)
		problem("line %d (event_id %s): not sent: %s: %v", m.line, m.id, res.Code, res.Err)
	}
	opts = append(opts[:len(opts):len(opts)], producer.WithResultHandler(onResult))
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return Report{}, fmt.Errorf("collector: %w", err)
	}

	start := time.Now()
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = p.Run(runCtx) // returns nil once Close has drained, or after stopRun
	}()

	lines, invalid, readErr := readEvents(ctx, in, by, func(v valid, n int) error {
		return p.PutRecord(ctx, producer.Record{PartitionKey: v.key, Data: v.data, Meta: sendMeta{line: n, id: v.id}})
	}, func(rej Rejected) {
		mu.Lock()
		defer mu.Unlock()
		var parts []string
		for _, e := range rej.Errors {
			if e.Field != "" {
				parts = append(parts, e.Field+": "+e.Message)
			} else {
				parts = append(parts, e.Message)
			}
		}
		problem("line %d: %s", rej.Line, strings.Join(parts, "; "))
	})

	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	closeErr := p.Close(closeCtx) // every failure also went through onResult
	cancel()
	stopRun()
	<-runDone

	mu.Lock()
	rep.Lines, rep.Invalid = lines, invalid
	rep.KinesisRecords = p.Stats().KinesisRecords
	rep.Elapsed = time.Since(start)
	out := rep
	mu.Unlock()

	switch {
	case readErr != nil:
		return out, readErr
	case out.Invalid > 0 || out.Unsent > 0:
		return out, fmt.Errorf("%w: %d invalid lines, %d events not sent", ErrIncomplete, out.Invalid, out.Unsent)
	case closeErr != nil: // cannot happen without Unsent > 0; never hide it
		return out, fmt.Errorf("collector: %w", closeErr)
	}
	return out, nil
}

// readEvents reads in line by line, calls put for each valid event and
// bad for each invalid line, and returns the non-blank lines and invalid
// ones seen. A line longer than appevent.MaxBodyBytes is invalid and
// skipped without being held in memory. It stops at the end of in, at a
// read error, when put fails, or when ctx ends, returning that error
// wrapped.
func readEvents(ctx context.Context, in io.Reader, by PartitionBy, put func(v valid, line int) error, bad func(Rejected)) (lines, invalid int, err error) {
	br := bufio.NewReaderSize(in, appevent.MaxBodyBytes+64)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return lines, invalid, fmt.Errorf("collector: stopped reading at line %d: %w", n, context.Cause(ctx))
		}
		data, tooLong, rerr := readLine(br)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return lines, invalid, fmt.Errorf("collector: read line %d: %w", n, rerr)
		}
		data = bytes.TrimSpace(data)
		switch {
		case tooLong:
			lines++
			invalid++
			bad(Rejected{Line: n, Errors: []FieldError{{Message: fmt.Sprintf("line is over %d bytes, the event limit", appevent.MaxBodyBytes)}}})
		case len(data) > 0:
			lines++
			v, rej := check(line{n: n, data: data}, by)
			if rej != nil {
				invalid++
				bad(*rej)
				break
			}
			if err := put(v, n); err != nil {
				return lines, invalid, fmt.Errorf("collector: line %d: %w", n, err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return lines, invalid, nil
		}
	}
}

// readLine returns the next line without its newline. When the line does
// not fit br's buffer, it discards the line and reports tooLong. At the
// end of input it returns the last line (possibly empty) with io.EOF.
func readLine(br *bufio.Reader) (data []byte, tooLong bool, err error) {
	data, err = br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = br.ReadSlice('\n')
	}
	if tooLong {
		return nil, true, err
	}
	return data, false, err
}
