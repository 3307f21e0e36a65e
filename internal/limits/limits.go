// Package limits holds, once, the rules a worker's lease timing and
// Kinesis reads must keep. lease.Config.Validate, worker.Config.Validate
// and the YAML configuration's Validate (internal/config) all check them,
// so a rule cannot say one thing in the library and another in the
// config file. Every message names the setting by its YAML key
// (lease.renew_interval, worker.max_read_rate), which is also how the Go
// fields read (lease.Config.RenewInterval, worker.Config.MaxReadRate).
//
// Rules that only one of them has stay there: the config file's stricter
// floors for operators (lease.duration at least 1s, lease.call_timeout at
// least 100ms), the lease package's worker id.
package limits

import (
	"fmt"
	"time"
)

// The Kinesis limits per shard that reads must stay within.
const (
	// MaxReadRate is the most GetRecords calls per second per shard,
	// shared by every consumer of the shard.
	MaxReadRate = 5
	// MaxReadBytesPerSecond is a shard's read rate, 2 MiB/s.
	MaxReadBytesPerSecond = 2 << 20
	// MinReadBytesPerSecond is the lowest read budget accepted.
	MinReadBytesPerSecond = 100_000
	// MaxRecords is the most records one GetRecords call returns.
	MaxRecords = 10000
)

// Lease is a worker's lease timing, with defaults applied.
type Lease struct {
	Duration, SafetyMargin, RenewInterval, TakeInterval, ScanInterval time.Duration
}

// Check returns one error per rule l breaks, each naming its key.
func (l Lease) Check() []error {
	var c checker
	if l.SafetyMargin <= 0 || l.SafetyMargin >= l.Duration {
		c.bad("lease.safety_margin", "%s must be above 0 and below lease.duration (%s)", l.SafetyMargin, l.Duration)
	}
	if l.RenewInterval <= 0 || l.RenewInterval > (l.Duration-l.SafetyMargin)/2 {
		c.bad("lease.renew_interval", "%s must be above 0 and at most half of lease.duration minus lease.safety_margin (%s), so one lost heartbeat does not cost the leases", l.RenewInterval, (l.Duration-l.SafetyMargin)/2)
	}
	if l.TakeInterval <= 0 {
		c.bad("lease.take_interval", "must be above 0")
	}
	if l.ScanInterval < l.TakeInterval {
		c.bad("lease.scan_interval", "%s must be at least lease.take_interval (%s)", l.ScanInterval, l.TakeInterval)
	}
	return c.errs
}

// Read is how a worker reads its shards, with defaults applied.
type Read struct {
	MaxRecords         int
	MaxReadRate        float64 // GetRecords calls per second per shard
	IdleTime           time.Duration
	BehindThreshold    time.Duration
	ReadBytesPerSecond int
	ShutdownGrace      time.Duration
}

// Check returns one error per rule r breaks, each naming its key.
func (r Read) Check() []error {
	var c checker
	if r.MaxRecords < 1 || r.MaxRecords > MaxRecords {
		c.bad("worker.max_records", "%d is out of range; Kinesis allows 1 to %d", r.MaxRecords, MaxRecords)
	}
	switch {
	case r.MaxReadRate <= 0 || r.MaxReadRate > MaxReadRate:
		c.bad("worker.max_read_rate", "%v is out of range; use above 0 and at most %d GetRecords calls per second per shard, the Kinesis limit shared by every consumer of the shard (default 2)", r.MaxReadRate, MaxReadRate)
	case r.IdleTime < time.Duration(float64(time.Second)/r.MaxReadRate):
		c.bad("worker.idle_time", "%s is shorter than worker.max_read_rate allows (%v calls per second: at least %s; default 1s)", r.IdleTime, r.MaxReadRate, time.Duration(float64(time.Second)/r.MaxReadRate))
	}
	if r.BehindThreshold < 0 {
		c.bad("worker.behind_threshold", "must not be negative")
	}
	if r.ReadBytesPerSecond < MinReadBytesPerSecond || r.ReadBytesPerSecond > MaxReadBytesPerSecond {
		c.bad("worker.read_bytes_per_second", "%d is out of range; use %d to %d (2 MiB, the Kinesis limit per shard; default 2000000)", r.ReadBytesPerSecond, MinReadBytesPerSecond, MaxReadBytesPerSecond)
	}
	if r.ShutdownGrace < time.Second {
		c.bad("worker.shutdown_grace", "%s is too short; use at least 1s", r.ShutdownGrace)
	}
	return c.errs
}

type checker struct{ errs []error }

func (c *checker) bad(key, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}
