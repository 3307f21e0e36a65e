package lease

import "time"

// liveness judges which workers are alive from their heartbeat counters as
// this process observes them. It never reads another host's clock: a
// worker is alive while its counter has changed within the lease duration,
// measured on the local monotonic clock (time.Time values from time.Now
// carry a monotonic reading, and Sub uses it). Not safe for concurrent use;
// the coordinator goroutine owns it.
type liveness struct {
	duration time.Duration
	seen     map[string]observation
}

type observation struct {
	counter   int64     // last counter seen; -1 while the worker has no item
	changedAt time.Time // local time the counter was first seen at this value
}

func newLiveness(d time.Duration) *liveness {
	return &liveness{duration: d, seen: map[string]observation{}}
}

// observe records one snapshot taken at now. Owners of leases that have no
// worker item are tracked too, as counter -1, so that an owner whose item
// vanished (or never appeared) is judged by the same rule: dead once
// nothing has changed for the lease duration since we first noticed.
func (lv *liveness) observe(now time.Time, snap Snapshot) {
	present := map[string]int64{}
	for _, w := range snap.Workers {
		present[w.ID] = w.Heartbeat
	}
	for _, l := range snap.Leases {
		if l.Owner != "" {
			if _, ok := present[l.Owner]; !ok {
				present[l.Owner] = -1
			}
		}
	}
	for id, c := range present {
		if o, ok := lv.seen[id]; !ok || o.counter != c {
			lv.seen[id] = observation{counter: c, changedAt: now}
		}
	}
	for id := range lv.seen {
		if _, ok := present[id]; !ok {
			delete(lv.seen, id) // gone from the table entirely: nothing to judge
		}
	}
}

// alive reports whether id's counter changed within the lease duration. A
// worker never observed is not alive. A worker without an item (counter
// -1) is never alive: it either left cleanly or has yet to heartbeat.
func (lv *liveness) alive(id string, now time.Time) bool {
	o, ok := lv.seen[id]
	if !ok || o.counter < 0 {
		return false
	}
	return now.Sub(o.changedAt) < lv.duration
}

// expired reports whether the owner id may be taken over: not seen to
// change for the whole lease duration. Unlike !alive, an owner that was
// only just noticed (or has no item) is given the full duration before its
// leases are taken, so a live worker we have not yet watched is never
// robbed.
func (lv *liveness) expired(id string, now time.Time) bool {
	o, ok := lv.seen[id]
	if !ok {
		return false
	}
	return now.Sub(o.changedAt) >= lv.duration
}
