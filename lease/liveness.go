package lease

import "time"

// liveness judges which worker incarnations have stopped heartbeating,
// from their counters as this process reads them. It never reads another
// host's clock (promise 5) and it never lets a late answer make a live
// worker look old (defect: expiry judged from a stale read):
//
//   - a counter seen at a new value is timed from when the read that
//     showed it *returned*: the heartbeat that wrote it was sent before
//     that, so the worker's own fence runs from no later than this;
//   - a counter seen unchanged is timed from when the read that showed it
//     was *sent*: the item held that value at some moment after the send,
//     so "unchanged until" is at least the send time, however late the
//     answer arrives.
//
// A worker has expired when the latest read showing its counter was sent
// Duration or more after that counter was first seen. Not safe for
// concurrent use; the coordinator's loop owns it.
type liveness struct {
	duration time.Duration
	seen     map[string]*observation
}

type observation struct {
	counter   int64     // last counter seen; -1 while the owner has no item
	changedAt time.Time // return time of the first read showing counter
	lastSent  time.Time // send time of the latest read showing counter
}

func newLiveness(d time.Duration) *liveness {
	return &liveness{duration: d, seen: map[string]*observation{}}
}

// observe records that a read sent at sent and returned at returned showed
// id's counter (-1: no item).
func (lv *liveness) observe(id string, counter int64, sent, returned time.Time) {
	o, ok := lv.seen[id]
	if !ok || o.counter != counter {
		lv.seen[id] = &observation{counter: counter, changedAt: returned, lastSent: sent}
		return
	}
	if sent.After(o.lastSent) {
		o.lastSent = sent
	}
}

// expired reports whether id's counter stayed unchanged for the whole
// duration, and that counter. A worker first noticed now (or an owner
// with no item) gets the full duration.
func (lv *liveness) expired(id string) (bool, int64) {
	o, ok := lv.seen[id]
	if !ok {
		return false, 0
	}
	return o.lastSent.Sub(o.changedAt) >= lv.duration, o.counter
}

// forget drops what is known about id (gone from the table).
func (lv *liveness) forget(id string) { delete(lv.seen, id) }
