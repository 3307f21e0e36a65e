package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/limits"
	"github.com/leasehold/leasehold/lease"
)

// Config configures a Worker. Zero fields take the defaults noted on
// each; Validate reports the rest of the mistakes, all at once.
type Config struct {
	// StreamName is the Kinesis stream. Required: no default.
	StreamName string
	// InitialPosition is where a shard without a checkpoint starts:
	// checkpoint.TrimHorizon (default), checkpoint.Latest or
	// checkpoint.AtTimestamp(t). Shards created by resharding always start
	// at TRIM_HORIZON so no child record is skipped.
	InitialPosition checkpoint.Position
	// MaxRecords per GetRecords call, 1–10000. Default 10000 (Kinesis'
	// most). While a shard is behind, a call asks for fewer: as many as
	// fit in one ceiling interval's share of ReadBytesPerSecond at the
	// shard's recent record size, so a batch stays about 1 MB at the
	// defaults and the shard is still read at its full byte rate.
	MaxRecords int
	// IdleTime is the time from the start of one GetRecords call on a
	// shard to the start of the next while the shard is caught up (the
	// last call returned less than a full batch and MillisBehindLatest
	// at most BehindThreshold). Default 1s: one call per second per
	// shard, and a record waits about half of it (0.5 s) at the median.
	// At least 1/MaxReadRate. A worker's caught-up calls fall on one grid
	// of IdleTime intervals (a random phase per worker), so that the
	// process wakes once per interval for all its shards; a shard joining
	// the grid waits between half and one and a half intervals once. No
	// grid when IdleTime is within a tenth of itself of 1/MaxReadRate.
	IdleTime time.Duration
	// MaxReadRate is the ceiling of GetRecords calls per second on one
	// shard, also while the shard is behind. Kinesis answers at most 5
	// per second per shard, shared by every consumer of the stream (a
	// Firehose, a Lambda, another application); the default 2 leaves the
	// rest to them. Above 0, at most 5.
	MaxReadRate float64
	// BehindThreshold: a shard whose last GetRecords reported more
	// MillisBehindLatest than this is behind and read again as soon as
	// MaxReadRate and ReadBytesPerSecond allow (as is one that returned a
	// full batch). Default 1s.
	BehindThreshold time.Duration
	// ReadBytesPerSecond is the read rate a consumer keeps to on one
	// shard: after a call returned B bytes, the next waits B divided by
	// this since the call began. Kinesis serves 2 MiB per second per
	// shard to all its consumers together and refuses calls for 5 s after
	// a 10 MiB response. Default 2,000,000; at most 2 MiB (2097152).
	ReadBytesPerSecond int
	// CheckpointInterval: how often a consumer checkpoints what is durable
	// while it runs (every flush at shutdown and handoff checkpoints
	// too). Default 5s; above 0.
	CheckpointInterval time.Duration
	// ShutdownGrace bounds a graceful stop: stop reading, flush,
	// checkpoint, release. Default 20s; at least 1s.
	ShutdownGrace time.Duration
	// ShardSyncInterval: how often ListShards runs. Default 60s; above 0.
	// Children named by a closed shard's last GetRecords are created at
	// once, whatever this is.
	ShardSyncInterval time.Duration
	// Lease holds the lease timings and the worker id. Its zero fields
	// take the defaults lease.Config notes (Duration 10s, RenewInterval
	// 4s, TakeInterval 1s, SafetyMargin 2s, ...); Lease.WorkerID is
	// required: no default.
	Lease lease.Config
}

func (c *Config) defaults() {
	if c.InitialPosition.IsZero() {
		c.InitialPosition = checkpoint.Position{Sequence: checkpoint.TrimHorizon}
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = 10000
	}
	if c.IdleTime == 0 {
		c.IdleTime = time.Second
	}
	if c.MaxReadRate == 0 {
		c.MaxReadRate = 2
	}
	if c.BehindThreshold == 0 {
		c.BehindThreshold = time.Second
	}
	if c.ReadBytesPerSecond == 0 {
		c.ReadBytesPerSecond = 2_000_000
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

// Validate reports every setting a worker cannot run with, the lease
// settings (lease.Config.Validate) included. Zero fields are taken as
// their defaults, as New takes them. The read rules are internal/limits'
// (shared with the YAML config), and their messages name the settings by
// their YAML keys (worker.max_read_rate for MaxReadRate).
func (c Config) Validate() error {
	c.defaults()
	var errs []error
	if c.StreamName == "" {
		errs = append(errs, errors.New("worker: stream name must not be empty"))
	}
	switch p := c.InitialPosition; {
	case p.Sequence == checkpoint.TrimHorizon, p.Sequence == checkpoint.Latest:
	default:
		if _, ok := p.Timestamp(); !ok {
			errs = append(errs, fmt.Errorf("worker: initial position %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", p.Sequence))
		}
	}
	errs = append(errs, limits.Read{MaxRecords: c.MaxRecords, MaxReadRate: c.MaxReadRate, IdleTime: c.IdleTime,
		BehindThreshold: c.BehindThreshold, ReadBytesPerSecond: c.ReadBytesPerSecond, ShutdownGrace: c.ShutdownGrace}.Check()...)
	if c.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("worker: checkpoint interval %s must be above 0", c.CheckpointInterval))
	}
	if c.ShardSyncInterval < 0 {
		errs = append(errs, fmt.Errorf("worker: shard sync interval %s must be above 0", c.ShardSyncInterval))
	}
	if err := c.Lease.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
