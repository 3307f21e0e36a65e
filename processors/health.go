package processors

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StallUnreadyAfter is how long a sink may keep failing transiently
// (throttling, 5xx, an unreachable endpoint) on some shard before the
// pipeline reports itself not ready. A sink that cannot write for a reason
// an operator must fix makes it not ready at once.
const StallUnreadyAfter = 30 * time.Second

// SinkState is what a sink reports about itself for metrics and readiness.
// Counters are cumulative since the sink was created.
type SinkState struct {
	// Stalled counts the shards whose latest write attempt failed and is
	// being retried: they read nothing meanwhile (backpressure).
	Stalled int
	// CannotWrite counts the shards, among Stalled, that the destination
	// refuses for a reason only an operator can fix: a cluster at its
	// shard limit, a missing or closed index, no write index behind an
	// alias, a read-only block, rejected credentials.
	CannotWrite int
	// StalledSince is when the oldest current stall began; zero if none.
	StalledSince time.Time
	// LastError is the most recent failure of a stalled shard.
	LastError string
	// Retries counts failed write attempts that were retried, and
	// CannotWriteErrors those among them that were "cannot write".
	Retries, CannotWriteErrors int64
	// BufferedBytes is what the sink holds in memory that is not durable
	// yet, over all shards of this worker; BufferLimit is the worker-wide
	// bound (0: only per-shard bounds apply). BufferWaits counts writes
	// that waited for buffer memory.
	BufferedBytes, BufferLimit, BufferWaits int64
}

// StateReporter is implemented by sinks that report a SinkState. State
// must not block and must be safe for concurrent use.
type StateReporter interface {
	State() SinkState
}

// Stalls tracks, per shard, whether a sink's writes are failing, for a
// SinkState. The zero value is ready to use; safe for concurrent use.
type Stalls struct {
	mu      sync.Mutex
	byShard map[string]*stall // guarded by mu

	retries, cannotWrite atomic.Int64
}

type stall struct {
	since       time.Time
	err         string
	at          time.Time // of err
	cannotWrite bool
}

// Failed records a failed attempt of shard's write that will be retried.
// cannotWrite says the destination refuses it until an operator acts. It
// reports whether this is news worth an Error log: the shard was not
// stalled before, or it was stalled transiently and now cannot write.
func (s *Stalls) Failed(shard string, err error, cannotWrite bool) (news bool) {
	s.retries.Add(1)
	if cannotWrite {
		s.cannotWrite.Add(1)
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byShard == nil {
		s.byShard = map[string]*stall{}
	}
	st := s.byShard[shard]
	if st == nil {
		st = &stall{since: now}
		s.byShard[shard] = st
		news = true
	}
	if cannotWrite && !st.cannotWrite {
		news = true
	}
	st.cannotWrite = cannotWrite
	st.err, st.at = err.Error(), now
	return news
}

// Recovered records that shard's writes succeed again; it returns how long
// they had failed (0 when they had not).
func (s *Stalls) Recovered(shard string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byShard[shard]
	if st == nil {
		return 0
	}
	delete(s.byShard, shard)
	return time.Since(st.since)
}

// Forget drops shard's state (its shard sink closed: the lease moved).
func (s *Stalls) Forget(shard string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byShard, shard)
}

// Fill sets the stall fields of st.
func (s *Stalls) Fill(st *SinkState) {
	st.Retries, st.CannotWriteErrors = s.retries.Load(), s.cannotWrite.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	var latest time.Time
	for _, v := range s.byShard {
		st.Stalled++
		if v.cannotWrite {
			st.CannotWrite++
		}
		if st.StalledSince.IsZero() || v.since.Before(st.StalledSince) {
			st.StalledSince = v.since
		}
		if v.at.After(latest) {
			latest, st.LastError = v.at, v.err
		}
	}
}

// DeadLetterState is the name under which SinkStates reports the
// dead-letter destination, when it reports a state (the S3 one does): it
// is written to like a sink, and a shard waits for it like for a sink.
const DeadLetterState = "dead_letter"

// SinkStates returns the state of every sink that reports one, by sink
// name, and the dead-letter destination's under DeadLetterState. It does
// not block.
func (p *Pipeline) SinkStates() map[string]SinkState {
	out := map[string]SinkState{}
	for _, s := range p.sinks {
		if r, ok := s.(StateReporter); ok {
			out[s.Name()] = r.State()
		}
	}
	if r, ok := p.dl.(StateReporter); ok {
		out[DeadLetterState] = r.State()
	}
	return out
}

// Ready returns nil while every sink can write, or an error that says
// which cannot and why: a sink refusing writes for a reason an operator
// must fix (see SinkState.CannotWrite), or one that has failed
// transiently on some shard for longer than StallUnreadyAfter. The worker's
// /readyz answers 503 with it. It does not block.
func (p *Pipeline) Ready() error {
	states := p.SinkStates()
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		st := states[name]
		switch {
		case st.CannotWrite > 0:
			errs = append(errs, fmt.Errorf("sink %s cannot write (%d shards waiting): %s", name, st.CannotWrite, clip(st.LastError)))
		case st.Stalled > 0 && time.Since(st.StalledSince) > StallUnreadyAfter:
			errs = append(errs, fmt.Errorf("sink %s failing for %s (%d shards waiting): %s", name, time.Since(st.StalledSince).Round(time.Second), st.Stalled, clip(st.LastError)))
		}
	}
	return errors.Join(errs...)
}

func clip(s string) string {
	const max = 400
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
