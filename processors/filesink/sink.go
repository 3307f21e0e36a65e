package filesink

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// DocLine is one line the `file` pipeline sink writes: the source record's
// coordinates, who processed it and when, and the document (or the raw
// data when no parser ran).
type DocLine struct {
	Line
	Document json.RawMessage `json:"document,omitempty"`
}

// Options configure the `file` sink.
type Options struct {
	// Path of the NDJSON file, appended to. Required.
	Path string `yaml:"path"`
	// SyncInterval: the least time between two fsyncs when the worker
	// asks what is durable before a checkpoint; every flush fsyncs.
	// Default 1s.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Name of the sink in checkpoints. Default "file".
	Name string `yaml:"name"`
}

// Register adds the `file` sink type to r.
func Register(r *processors.Registry) {
	r.RegisterSink("file", func(ctx context.Context, o processors.Options, deps processors.Deps) (processors.Sink, error) {
		var opts Options
		if err := o.Decode(&opts); err != nil {
			return nil, err
		}
		return NewSink(opts)
	})
}

// PipelineSink is the `file` sink for a processors pipeline. Safe for
// concurrent use.
type PipelineSink struct {
	name string
	s    *Sink
}

// NewSink opens the file. An empty path is an error naming the option.
func NewSink(o Options) (*PipelineSink, error) {
	if o.Path == "" {
		return nil, fmt.Errorf("filesink: path is required (the NDJSON file to append to)")
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.SyncInterval < 0 {
		return nil, fmt.Errorf("filesink: sync_interval %s must not be negative", o.SyncInterval)
	}
	if o.Name == "" {
		o.Name = "file"
	}
	s, err := Open(o.Path, o.SyncInterval)
	if err != nil {
		return nil, err
	}
	return &PipelineSink{name: o.Name, s: s}, nil
}

// Name implements processors.Sink.
func (p *PipelineSink) Name() string { return p.name }

// Close implements processors.Sink.
func (p *PipelineSink) Close(ctx context.Context) error { return p.s.Close() }

// Open implements processors.Sink.
func (p *PipelineSink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	return &docWriter{w: shardWriter{s: p.s, shard: shard}}, nil
}

type docWriter struct{ w shardWriter }

func (d *docWriter) Write(ctx context.Context, msgs []*processors.Message) error {
	now := time.Now().UTC()
	d.w.s.mu.Lock()
	defer d.w.s.mu.Unlock()
	for _, m := range msgs {
		r := m.Record
		l := DocLine{Line: Line{WorkerID: d.w.shard.WorkerID, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, ProcessedAt: now}}
		if m.Parsed {
			l.Document = m.Event.AppendJSON(nil)
		} else {
			l.Data = string(r.Data)
		}
		if err := d.w.s.enc.Encode(l); err != nil {
			return fmt.Errorf("filesink: write: %w", err)
		}
	}
	d.w.pending, d.w.penGen = msgs[len(msgs)-1].Position(), d.w.s.gen
	d.w.refreshLocked()
	return nil
}

func (d *docWriter) Flush(ctx context.Context) error {
	_, err := d.w.Flush(ctx)
	return err
}

func (d *docWriter) Durable() checkpoint.Position { return d.w.Durable().Position }

func (d *docWriter) Close() error { return nil }
