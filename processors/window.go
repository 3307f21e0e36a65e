package processors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of EventTimeWindow: CloudFront logs arrive up to a day late and
// are replayed from S3 within weeks; app events carry the producer's clock,
// which may run a little ahead.
const (
	DefaultMaxPast   = 30 * 24 * time.Hour
	DefaultMaxFuture = 24 * time.Hour
)

// StageEventTime is the stage name of records dead-lettered because their
// event time is outside the accepted window.
const StageEventTime = "event_time"

// ErrEventTimeOutOfRange is wrapped by the failure of a record whose event
// time is outside the pipeline's accepted window. It is permanent: the
// record is dead-lettered with a reason that names the window.
var ErrEventTimeOutOfRange = errors.New("processors: event_time outside the accepted window")

// EventTimeWindow bounds the event times a pipeline passes to its sinks,
// relative to when the record reached the stream (its Kinesis arrival
// time, so that a replay decides exactly as the first run did; the
// worker's clock when a record has none). Sinks name indices and
// partitions by event time, so without a bound one request per odd date —
// year 1, year 9999 — would create an index or partition each. An event
// outside the window is dead-lettered at stage "event_time" with the
// reason, never indexed. It is the `pipeline.event_time` config section:
//
//	pipeline:
//	  event_time:
//	    max_past: 30d     # oldest accepted: 30 days before arrival (default)
//	    max_future: 1d    # newest accepted: 1 day after arrival (default)
//
// A backfill of older logs needs a larger max_past. Zero fields take the
// defaults.
type EventTimeWindow struct {
	// MaxPast is how far before its arrival an event may have happened.
	// Default DefaultMaxPast (30 days).
	MaxPast Duration `yaml:"max_past"`
	// MaxFuture is how far after its arrival an event may claim to have
	// happened (clock skew). Default DefaultMaxFuture (1 day).
	MaxFuture Duration `yaml:"max_future"`
}

func (w EventTimeWindow) withDefaults() EventTimeWindow {
	if w.MaxPast == 0 {
		w.MaxPast = Duration(DefaultMaxPast)
	}
	if w.MaxFuture == 0 {
		w.MaxFuture = Duration(DefaultMaxFuture)
	}
	return w
}

// Validate reports a negative bound, naming the option.
func (w EventTimeWindow) Validate() error {
	var errs []error
	if w.MaxPast < 0 {
		errs = append(errs, fmt.Errorf("pipeline.event_time.max_past: %s is negative", time.Duration(w.MaxPast)))
	}
	if w.MaxFuture < 0 {
		errs = append(errs, fmt.Errorf("pipeline.event_time.max_future: %s is negative", time.Duration(w.MaxFuture)))
	}
	return errors.Join(errs...)
}

// check returns nil when t is inside the window around arrival, else an
// error wrapping ErrEventTimeOutOfRange and ErrPermanent that says which
// bound it crossed.
func (w EventTimeWindow) check(t, arrival time.Time) error {
	from, to := arrival.Add(-time.Duration(w.MaxPast)), arrival.Add(time.Duration(w.MaxFuture))
	at := arrival.UTC().Format(time.RFC3339)
	switch {
	case t.IsZero():
		return &windowError{"the event has no event_time"}
	case t.Before(from):
		return &windowError{fmt.Sprintf("event_time %s is outside the accepted window: more than %s before the record's arrival at %s (pipeline.event_time.max_past)",
			t.UTC().Format(time.RFC3339), w.MaxPast, at)}
	case t.After(to):
		return &windowError{fmt.Sprintf("event_time %s is outside the accepted window: more than %s after the record's arrival at %s (pipeline.event_time.max_future)",
			t.UTC().Format(time.RFC3339), w.MaxFuture, at)}
	}
	return nil
}

// windowError is ErrEventTimeOutOfRange and ErrPermanent with a reason
// that reads well in a dead letter.
type windowError struct{ msg string }

func (e *windowError) Error() string { return e.msg }
func (e *windowError) Is(target error) bool {
	return target == ErrEventTimeOutOfRange || target == ErrPermanent
}

// Duration is a time.Duration that decodes from YAML as a Go duration
// ("36h", "90m") or a whole number of days ("30d").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a duration; use a Go duration such as 36h or whole days such as 30d", n.Line, n.Value)
	}
	*d = v
	return nil
}

// ParseDuration parses "30d" (days) or a Go duration ("36h").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return 0, fmt.Errorf("%q: want a whole number of days", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	return Duration(v), err
}

// String formats whole days as "30d", anything else as time.Duration does.
func (d Duration) String() string {
	if v := time.Duration(d); v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return time.Duration(d).String()
}
