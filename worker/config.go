package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// Config configures a Worker. Zero fields take the defaults noted.
type Config struct {
	// StreamName is the Kinesis stream. Required.
	StreamName string
	// InitialPosition is where a shard without a checkpoint starts:
	// checkpoint.TrimHorizon (default), checkpoint.Latest or
	// checkpoint.AtTimestamp(t). Shards created by resharding always start
	// at TRIM_HORIZON so no child record is skipped.
	InitialPosition checkpoint.Position
	// MaxRecords per GetRecords call, 1–10000. Default 1000.
	MaxRecords int
	// IdleTime between GetRecords calls when a shard returned nothing.
	// Default 250ms.
	IdleTime time.Duration
	// CheckpointInterval: how often a consumer checkpoints what is durable
	// while it runs (every flush at shutdown and handoff checkpoints
	// too). Default 5s.
	CheckpointInterval time.Duration
	// ShutdownGrace bounds a graceful stop: stop reading, flush,
	// checkpoint, release. Default 20s.
	ShutdownGrace time.Duration
	// ShardSyncInterval: how often ListShards runs. Default 60s; children
	// named by a closed shard's last GetRecords are created at once.
	ShardSyncInterval time.Duration
	// Lease holds the lease timings and the worker id.
	Lease lease.Config
}

func (c *Config) defaults() {
	if c.InitialPosition.IsZero() {
		c.InitialPosition = checkpoint.Position{Sequence: checkpoint.TrimHorizon}
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = 1000
	}
	if c.IdleTime == 0 {
		c.IdleTime = 250 * time.Millisecond
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 5 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 20 * time.Second
	}
	if c.ShardSyncInterval == 0 {
		c.ShardSyncInterval = 60 * time.Second
	}
}

// Validate reports settings a worker cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.StreamName == "" {
		errs = append(errs, errors.New("worker: stream name must not be empty"))
	}
	if c.MaxRecords < 1 || c.MaxRecords > 10000 {
		errs = append(errs, fmt.Errorf("worker: max records %d out of range 1-10000", c.MaxRecords))
	}
	switch p := c.InitialPosition; {
	case p.Sequence == checkpoint.TrimHorizon, p.Sequence == checkpoint.Latest:
	default:
		if _, ok := p.Timestamp(); !ok {
			errs = append(errs, fmt.Errorf("worker: initial position %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", p.Sequence))
		}
	}
	if c.ShutdownGrace < time.Second {
		errs = append(errs, fmt.Errorf("worker: shutdown grace %s below 1s", c.ShutdownGrace))
	}
	return errors.Join(errs...)
}
