package lease

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/leasehold/leasehold/internal/limits"
)

// Config holds the coordinator's timings. Zero fields take the defaults
// noted on each; Validate reports the rest of the mistakes, all at once.
type Config struct {
	// WorkerID names this worker in the table, logs and metrics.
	// Required: no default.
	// Each process adds an incarnation of its own (see WorkerName), so two
	// processes with the same id never share leases.
	WorkerID string
	// Duration: a worker whose heartbeat counter has not changed for this
	// long, as seen by a peer, is declared dead and loses its leases.
	// Default 10s.
	Duration time.Duration
	// RenewInterval: how often the heartbeat is written. Default 4s, or
	// (Duration-SafetyMargin)/2 when that is shorter. At most
	// (Duration-SafetyMargin)/2 so that one failed heartbeat can be
	// retried before the worker fences itself.
	RenewInterval time.Duration
	// TakeInterval: how often the coordinator looks at the table (a cheap
	// poll of the fleet generation and its neighbours' heartbeats, or a
	// scan when the table is small or changed). Default 1s; jittered by
	// ±10%.
	TakeInterval time.Duration
	// SafetyMargin: a worker whose last successful heartbeat was sent more
	// than Duration minus this margin ago stops processing every shard on
	// its own timer, before any peer may take them. The margin must cover
	// a write already sent to a sink reaching it. Default 2s.
	SafetyMargin time.Duration
	// HandoffTimeout: a handoff this worker requested and that has not
	// happened in this time is cancelled. Default 2 × Duration; above 0.
	HandoffTimeout time.Duration
	// CallTimeout bounds every lease-table call but heartbeats (a scan:
	// five times this), so that a hung connection delays a pass, never the
	// fence, which runs on its own timer. Safety does not depend on it.
	// Default 5s. (A heartbeat is bounded by Duration - SafetyMargin: an
	// answer after that could no longer extend the fence; not settable.)
	CallTimeout time.Duration
	// ScanInterval: even when nothing changed, the fleet reads the whole
	// table this often (eventually consistent), to see every worker and
	// catch a change whose announcement was lost. The workers take turns:
	// each of n live workers scans every n × ScanInterval, so the cost does
	// not grow with the fleet (see scheduleTurn). Default 2m.
	ScanInterval time.Duration
}

func (c *Config) defaults() {
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.SafetyMargin == 0 {
		c.SafetyMargin = 2 * time.Second
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = min(4*time.Second, (c.Duration-c.SafetyMargin)/2)
	}
	if c.TakeInterval == 0 {
		c.TakeInterval = time.Second
	}
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = 2 * c.Duration
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = 2 * time.Minute
	}
}

// Validate reports every setting that cannot keep the lease promises.
// Zero fields are taken as their defaults, as NewCoordinator takes them.
// The timing rules are internal/limits' (shared with the YAML config), and
// their messages name the settings by their YAML keys
// (lease.renew_interval for RenewInterval).
func (c Config) Validate() error {
	c.defaults()
	var errs []error
	if c.WorkerID == "" {
		errs = append(errs, errors.New("lease: worker id must not be empty"))
	}
	if strings.ContainsAny(c.WorkerID, incarnationSep+"\x00\n") {
		errs = append(errs, fmt.Errorf("lease: worker id %q must not contain %q or control characters", c.WorkerID, incarnationSep))
	}
	errs = append(errs, limits.Lease{Duration: c.Duration, SafetyMargin: c.SafetyMargin, RenewInterval: c.RenewInterval,
		TakeInterval: c.TakeInterval, ScanInterval: c.ScanInterval}.Check()...)
	if c.HandoffTimeout <= 0 {
		errs = append(errs, errors.New("lease: handoff timeout must be above 0"))
	}
	if c.CallTimeout <= 0 {
		errs = append(errs, errors.New("lease: call timeout must be above 0"))
	}
	return errors.Join(errs...)
}
