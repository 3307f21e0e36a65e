package worker

import (
	"context"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

// Record is one user record: a plain Kinesis record, or one sub-record of a
// KPL aggregate (then SubSequenceNumber is its index in the aggregate).
type Record struct {
	StreamName        string
	ShardID           string
	SequenceNumber    string
	SubSequenceNumber int64
	PartitionKey      string
	Data              []byte
	ArrivalTime       time.Time
	Aggregated        bool
	// Malformed is set when the Kinesis record carried a KPL aggregate
	// whose digest matched but whose body could not be decoded; Data is
	// then the whole raw record. The processor should dead-letter it.
	Malformed error
}

// Position is the record's place in its shard, for checkpoints.
func (r Record) Position() checkpoint.Position {
	return checkpoint.Position{Sequence: r.SequenceNumber, Sub: r.SubSequenceNumber}
}

// Shard describes the lease a ShardProcessor is created for.
type Shard struct {
	StreamName string
	ShardID    string
	WorkerID   string
	// Epoch is the lease epoch this worker holds the shard at; it grows
	// with every change of owner, so records a sink writes can be told
	// apart by the grant they were processed under.
	Epoch int64
	// Start is the checkpoint the shard resumes from, including each
	// sink's own progress, so a sink that is ahead can skip what it has
	// already written.
	Start checkpoint.Checkpoint
}

// ShardProcessor receives one shard's records in order, for as long as
// this worker holds the shard's lease. A worker calls its methods from one
// goroutine at a time.
//
// The ctx given to the factory, Process and Flush is the lease context:
// it ends when the lease is lost, when the worker fences itself (its
// heartbeat is too old) or on a hard stop, and its Deadline is the fence
// time. Check ctx.Err() before every write to a destination and bound
// background writes by ctx: a write begun after the fence could land after
// another worker took the shard over.
//
// Delivery contract: the worker checkpoints only a position returned by
// Flush or Durable, so a ShardProcessor must report only what every sink
// has durably written. After a crash the records after the checkpoint are
// delivered again; sinks make that replay harmless (deterministic ids,
// deterministic object keys).
type ShardProcessor interface {
	// Process accepts records (possibly buffering them). It may block to
	// apply backpressure; the shard reads nothing more meanwhile. An error
	// stops the shard without a checkpoint: return one only when the
	// processor cannot go on (a poison record should be dead-lettered and
	// skipped instead, a down sink retried).
	Process(ctx context.Context, records []Record) error
	// Flush makes every accepted record durable and returns the checkpoint
	// through which everything is.
	Flush(ctx context.Context) (checkpoint.Checkpoint, error)
	// Durable returns, without blocking, the checkpoint through which
	// records are durable now; the zero value means nothing new.
	Durable() checkpoint.Checkpoint
	// Close releases resources. It is called once, with why: after the
	// last Flush (CloseHandoff, CloseShardEnd, CloseShutdown) or without
	// one (CloseLeaseLost, CloseFailed: unflushed records are dropped;
	// they are replayed by the next owner).
	Close(reason CloseReason) error
}

// CloseReason says why a ShardProcessor is closed.
type CloseReason int

const (
	// CloseShutdown: the worker is stopping; the lease was released after
	// a final Flush and checkpoint.
	CloseShutdown CloseReason = iota + 1
	// CloseHandoff: the lease was handed to another worker for balance
	// after a final Flush and checkpoint.
	CloseHandoff
	// CloseShardEnd: the shard is closed (split, merged or trimmed) and
	// every record was processed, flushed and checkpointed.
	CloseShardEnd
	// CloseLeaseLost: the lease is no longer this worker's (taken by a
	// peer, or fenced: the heartbeat got too old); nothing more may be
	// written.
	CloseLeaseLost
	// CloseFailed: processing failed (the processor, a flush, or the shard
	// iterator); the lease is taken back later and the records replayed.
	CloseFailed
)

func (r CloseReason) String() string {
	switch r {
	case CloseShutdown:
		return "shutdown"
	case CloseHandoff:
		return "handoff"
	case CloseShardEnd:
		return "shard end"
	case CloseLeaseLost:
		return "lease lost"
	case CloseFailed:
		return "failed"
	}
	return "unknown"
}

// ProcessorFactory creates a ShardProcessor for each lease the worker
// acquires. It is called from the worker's goroutines and must be safe for
// concurrent use.
type ProcessorFactory func(ctx context.Context, shard Shard) (ShardProcessor, error)
