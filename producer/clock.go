package producer

import "time"

// Clock tells the time and makes timers. The producer reads time only
// through it, so tests can drive linger and backoff with a fake. Timers
// take a deadline rather than a duration so that a fake clock moved
// between reading the time and arming a timer cannot push the deadline
// back. Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// TimerAt returns a timer that fires once the clock reaches t (at
	// once if it already has).
	TimerAt(t time.Time) Timer
}

// Timer is the part of *time.Timer the producer uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) TimerAt(t time.Time) Timer { return realTimer{time.NewTimer(time.Until(t))} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
