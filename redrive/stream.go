package redrive

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/leasehold/leasehold/producer"
)

// Stream is the Target that puts each dead letter's record back into a
// Kinesis stream, with its partition key, for the workers to process
// again. It suits dead letters of processors (a parser bug, a lookup
// that failed): no sink has their record. A sink's dead letter is
// refused (ErrRefused): the other sinks have the record already, and a
// new Kinesis record would be archived a second time; replay those
// through the pipeline. Consumers see a new sequence number: documents
// keep their id when it comes from the content (an app event's event_id,
// a CloudFront line's x-edge-request-id), which is the case for every
// record leasehold parses.
type Stream struct {
	prod       *producer.Producer
	sinkStages map[string]bool
	cancel     context.CancelFunc
	done       chan struct{}

	mu      sync.Mutex
	results map[int]error // by Meta, for the batch in flight
}

// NewStream returns a Stream writing to stream through client; its
// producer gives up on a record after its usual attempts. It refuses the
// dead letters of sinks (Letter.IsSink); sinkStages names the pipeline's
// sinks, for dead letters written before stage_kind existed. Close stops
// it.
func NewStream(client producer.KinesisAPI, stream string, sinkStages []string, opts ...producer.Option) (*Stream, error) {
	s := &Stream{sinkStages: map[string]bool{}, results: map[int]error{}, done: make(chan struct{})}
	for _, n := range sinkStages {
		s.sinkStages[n] = true
	}
	opts = append(opts[:len(opts):len(opts)], producer.WithResultHandler(s.onResult))
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return nil, fmt.Errorf("redrive: %w", err)
	}
	s.prod = p
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		_ = p.Run(ctx)
	}()
	return s, nil
}

func (s *Stream) onResult(r producer.Result) {
	i, _ := r.Record.Meta.(int)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[i] = r.Err
}

// Replay implements Target.
func (s *Stream) Replay(ctx context.Context, letters []Letter) ([]error, error) {
	out := make([]error, len(letters))
	s.mu.Lock()
	clear(s.results)
	s.mu.Unlock()
	var put []int
	for i, l := range letters {
		if l.IsSink(func(stage string) bool { return s.sinkStages[stage] }) {
			out[i] = fmt.Errorf("%w: dead letter of sink %s; the other sinks have the record: replay it --to pipeline", ErrRefused, l.Stage)
			continue
		}
		key := l.PartitionKey
		if key == "" {
			key = l.ShardID + "/" + l.SequenceNumber
		}
		if err := s.prod.PutRecord(ctx, producer.Record{PartitionKey: key, Data: l.Data, Meta: i}); err != nil {
			return nil, err
		}
		put = append(put, i)
	}
	// Flush reports failures through the result handler too.
	if err := s.prod.Flush(ctx); err != nil && ctx.Err() != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range put {
		if err, ok := s.results[i]; !ok {
			out[i] = fmt.Errorf("redrive: no outcome for the record")
		} else if err != nil {
			out[i] = fmt.Errorf("put into the stream: %w", err)
		}
	}
	return out, nil
}

// Close stops the producer. Records that failed were outcomes already.
func (s *Stream) Close(ctx context.Context) error {
	err := s.prod.Close(ctx)
	s.cancel()
	<-s.done
	if _, reported := errors.AsType[*producer.FailedError](err); err != nil && !reported {
		return fmt.Errorf("redrive: %w", err)
	}
	return nil
}
