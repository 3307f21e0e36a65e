// Package filesink is a sink that appends every record to a local NDJSON
// file, one line per user record, with where it came from and who
// processed it. It is for debugging and for the project's own end-to-end
// measurements (counting every record exactly).
package filesink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/worker"
)

// Line is one line of the file.
type Line struct {
	WorkerID          string    `json:"worker_id"`
	ShardID           string    `json:"shard_id"`
	Epoch             int64     `json:"epoch,omitempty"` // the lease epoch the record was processed under
	SequenceNumber    string    `json:"sequence_number"`
	SubSequenceNumber int64     `json:"sub_sequence_number"`
	PartitionKey      string    `json:"partition_key"`
	Data              string    `json:"data"`
	ProcessedAt       time.Time `json:"processed_at"`
}

// File is one open NDJSON file shared by every shard of a worker; its
// Factory is the worker.ProcessorFactory that writes raw records into it
// (for the pipeline's `file` sink see Sink). It is safe for concurrent use.
type File struct {
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	enc      *json.Encoder // writes to w
	line     []byte        // Process's buffer for one line
	syncEach time.Duration
	lastSync time.Time
	// gen counts fsyncs; a shard's records are durable once a sync with a
	// generation above the one they were written in has completed.
	gen int64
}

// Open opens (appending, creating) path. Records become durable when the
// worker asks what is durable before a checkpoint (Durable), with at most
// one fsync per syncEvery, and at every Flush. Nothing is fsynced between
// checkpoints: an fsync no checkpoint waits for buys nothing.
func Open(path string, syncEvery time.Duration) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filesink: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	return &File{f: f, w: w, enc: json.NewEncoder(w), syncEach: syncEvery, lastSync: time.Now()}, nil
}

// Close flushes and closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.syncLocked(); err != nil {
		return err
	}
	return s.f.Close()
}

func (s *File) syncLocked() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("filesink: flush: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("filesink: fsync: %w", err)
	}
	s.gen++
	s.lastSync = time.Now()
	return nil
}

// Factory returns a worker.ProcessorFactory writing raw records into s.
func (s *File) Factory() worker.ProcessorFactory {
	return func(ctx context.Context, shard worker.Shard) (worker.ShardProcessor, error) {
		return &shardWriter{s: s, shard: shard}, nil
	}
}

type shardWriter struct {
	s       *File
	shard   worker.Shard
	pending checkpoint.Position // last written, not yet known durable
	penGen  int64               // sink generation pending was written in
	durable checkpoint.Position // last known durable
}

func (w *shardWriter) Process(ctx context.Context, recs []worker.Record) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	// ctx is the lease context: past the fence time (or once the lease is
	// lost) nothing may be written.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filesink: lease context: %w", err)
	}
	now := time.Now().UTC()
	for _, r := range recs {
		l := Line{WorkerID: w.shard.WorkerID, ShardID: r.ShardID, Epoch: w.shard.Epoch, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, ProcessedAt: now}
		w.s.line = appendLine(w.s.line[:0], &l, r.Data)
		if _, err := w.s.w.Write(w.s.line); err != nil {
			return fmt.Errorf("filesink: write: %w", err)
		}
	}
	w.pending, w.penGen = recs[len(recs)-1].Position(), w.s.gen
	w.refreshLocked()
	return nil
}

func (w *shardWriter) refreshLocked() {
	if !w.pending.IsZero() && w.s.gen > w.penGen {
		w.durable, w.pending = w.pending, checkpoint.Position{}
	}
}

func (w *shardWriter) Flush(ctx context.Context) (checkpoint.Checkpoint, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if !w.pending.IsZero() {
		if err := w.s.syncLocked(); err != nil {
			return checkpoint.Checkpoint{}, err
		}
	}
	w.refreshLocked()
	return checkpoint.Checkpoint{Position: w.durable}, nil
}

func (w *shardWriter) Durable() checkpoint.Checkpoint {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if !w.pending.IsZero() && w.s.gen == w.penGen && time.Since(w.s.lastSync) >= w.s.syncEach {
		if err := w.s.syncLocked(); err != nil {
			return checkpoint.Checkpoint{Position: w.durable}
		}
	}
	w.refreshLocked()
	return checkpoint.Checkpoint{Position: w.durable}
}

func (w *shardWriter) Close(worker.CloseReason) error { return nil }
