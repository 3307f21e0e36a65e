package filesink

import (
	"context"
	"encoding/json"
	"errors"
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

// ErrConfig is wrapped by every error Options.Validate returns.
var ErrConfig = errors.New("filesink: invalid options")

// Options configure the `file` sink. Zero values mean the default.
type Options struct {
	// Path of the NDJSON file, appended to (created if missing). Required:
	// no default.
	Path string `yaml:"path"`
	// SyncInterval: the least time between two fsyncs when the worker
	// asks what is durable before a checkpoint; every flush fsyncs.
	// Default 1s; must not be negative.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Name of the sink in checkpoints. Default "file".
	Name string `yaml:"name"`
}

// Validate reports every invalid option, naming its key; zero values are
// valid except Path's. Errors wrap ErrConfig. NewSink calls it.
func (o Options) Validate() error {
	var errs []error
	if o.Path == "" {
		errs = append(errs, fmt.Errorf("%w: path is required (the NDJSON file to append to)", ErrConfig))
	}
	if o.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: sync_interval %s must not be negative", ErrConfig, o.SyncInterval))
	}
	return errors.Join(errs...)
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

// Sink is the `file` sink of a processors pipeline: documents appended to
// a File. Safe for concurrent use.
type Sink struct {
	name string
	s    *File
}

// NewSink validates o and opens the file. It does not block beyond the
// open; errors wrap ErrConfig or are the open's.
func NewSink(o Options) (*Sink, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.Name == "" {
		o.Name = "file"
	}
	s, err := Open(o.Path, o.SyncInterval)
	if err != nil {
		return nil, err
	}
	return &Sink{name: o.Name, s: s}, nil
}

// Name implements processors.Sink.
func (p *Sink) Name() string { return p.name }

// Close implements processors.Sink.
func (p *Sink) Close(ctx context.Context) error { return p.s.Close() }

// Open implements processors.Sink.
func (p *Sink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
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
