package producer

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// batch is one PutRecords call being built or in flight. Owned by the
// loop while built, then by its sender.
type batch struct {
	entries []types.PutRecordsRequestEntry
	groups  [][]*pending  // per entry: the user records it carries
	agg     []bool        // per entry: a KPL aggregate?
	shards  []*shardQueue // per entry: the queue it came from
	bytes   int
}

func (b *batch) add(q *shardQueue, e types.PutRecordsRequestEntry, group []*pending, aggregated bool, size int) {
	b.entries = append(b.entries, e)
	b.groups = append(b.groups, group)
	b.agg = append(b.agg, aggregated)
	b.shards = append(b.shards, q)
	b.bytes += size
}

// sendable reports whether q may go into a call now.
func (q *shardQueue) sendable(now time.Time) bool {
	return !q.busy && len(q.recs) > 0 && !now.Before(q.notBefore)
}

// urgentLocked reports whether q's head must not wait any longer: the
// producer is closing, a Flush covers it, its linger has passed, or it is
// a retry (which has waited its backoff already).
func (p *Producer) urgentLocked(q *shardQueue, now time.Time) bool {
	h := q.recs[0]
	return p.closed || h.id <= p.flushUpTo || h.sends > 0 || now.Sub(h.enqueued) >= p.cfg.linger
}

// fullLocked reports whether q alone can fill its share of a call, so
// waiting longer would not make the call bigger.
func (p *Producer) fullLocked(q *shardQueue) bool {
	if q.bytes >= min(shardBytesPerCall, p.cfg.batchBytes) {
		return true
	}
	return !p.cfg.aggregate && len(q.recs) >= min(q.quota, p.cfg.batchRecords)
}

// holdLocked reports whether no call may start now: a new shard map waits
// for the calls in flight to finish, or, with aggregation, the first
// ListShards is still out (aggregating by shard needs its answer; it is
// bounded by the request timeout, and a failure ends the wait too). Both
// end with a poke.
func (p *Producer) holdLocked() bool {
	return p.pendingMap != nil || (p.cfg.aggregate && !p.mapLoaded)
}

// nextBatchLocked builds the next call when some sendable shard is urgent
// or full, topping it up with the other sendable shards. It returns nil
// when nothing should be sent now.
func (p *Producer) nextBatchLocked(now time.Time) *batch {
	if p.holdLocked() {
		return nil
	}
	trigger := false
	for _, q := range p.queues {
		if q.sendable(now) && (p.urgentLocked(q, now) || p.fullLocked(q)) {
			trigger = true
			break
		}
	}
	if !trigger {
		return nil
	}
	b := &batch{}
	n := len(p.queues)
	for i := range n {
		q := p.queues[(p.rr+i)%n]
		if !q.sendable(now) {
			continue
		}
		if p.cfg.aggregate {
			p.takeAggregatedLocked(b, q)
		} else {
			p.takeLocked(b, q)
		}
		if len(b.entries) >= p.cfg.batchRecords || b.bytes >= p.cfg.batchBytes {
			break
		}
	}
	p.rr = (p.rr + 1) % n
	if len(b.entries) == 0 {
		return nil
	}
	p.stats.Calls++
	return b
}

// fits reports whether an entry of size bytes may join b for q, which has
// already put taken bytes and n entries in b. A shard's first entry may
// exceed the per-shard share (records up to 10 MiB exist); later ones not.
func (p *Producer) fits(b *batch, q *shardQueue, n, taken, size int) bool {
	maxEntries := q.quota
	if p.cfg.strictOrder {
		maxEntries = 1
	}
	switch {
	case len(b.entries) >= p.cfg.batchRecords || n >= maxEntries:
		return false
	case b.bytes+size > p.cfg.batchBytes:
		return false
	case n > 0 && taken+size > shardBytesPerCall:
		return false
	}
	return true
}

// rawEntry is the request entry for one user record.
func rawEntry(pd *pending) types.PutRecordsRequestEntry {
	e := types.PutRecordsRequestEntry{PartitionKey: aws.String(pd.rec.PartitionKey), Data: pd.rec.Data}
	if pd.rec.ExplicitHashKey != "" {
		e.ExplicitHashKey = aws.String(pd.rec.ExplicitHashKey)
	}
	return e
}

// takeLocked moves records from the head of q into b, one Kinesis record
// each, while they fit.
func (p *Producer) takeLocked(b *batch, q *shardQueue) {
	n, taken := 0, 0
	for n < len(q.recs) {
		pd := q.recs[n]
		if !p.fits(b, q, n, taken, pd.size) {
			break
		}
		b.add(q, rawEntry(pd), []*pending{pd}, false, pd.size)
		n++
		taken += pd.size
	}
	p.popLocked(q, n, taken)
}

// takeAggregatedLocked packs records from the head of q into KPL
// aggregates and moves them into b while they fit. Without a real shard
// map only runs of one partition key share an aggregate: records of one
// virtual range may belong to different shards, and the Java KCL drops an
// aggregate holding a record outside its shard.
func (p *Producer) takeAggregatedLocked(b *batch, q *shardQueue) {
	a := p.agg
	a.Reset()
	var group []*pending
	n, taken, used := 0, 0, 0 // entries added, bytes added, records consumed

	emit := func() {
		if len(group) == 1 { // one record: send it plain, it is smaller
			a.Reset()
			pd := group[0]
			b.add(q, rawEntry(pd), group, false, pd.size)
			taken += pd.size
		} else {
			rec, _ := a.Drain()
			e := types.PutRecordsRequestEntry{PartitionKey: aws.String(rec.PartitionKey), Data: rec.Data}
			if rec.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(rec.ExplicitHashKey)
			}
			b.add(q, e, group, true, rec.Size())
			taken += rec.Size()
		}
		n++
		group = nil
	}

	for used < len(q.recs) {
		pd := q.recs[used]
		pk, ehk := pd.rec.PartitionKey, pd.rec.ExplicitHashKey
		size := a.SizeWith(pk, ehk, len(pd.rec.Data))
		if len(group) > 0 {
			first := group[0].rec
			sameRun := pk == first.PartitionKey && ehk == first.ExplicitHashKey
			if (!p.smap.real && !sameRun) || size > p.cfg.aggMaxBytes || !p.fits(b, q, n, taken, size) ||
				(p.cfg.aggMaxRecords > 0 && a.Count() >= p.cfg.aggMaxRecords) {
				emit()
				continue // look at pd again, as the first of a new group
			}
		} else {
			if !p.fits(b, q, n, taken, pd.size) {
				break
			}
			if size > p.cfg.aggMaxBytes || !p.fits(b, q, n, taken, size) {
				// Fits plain but not as an aggregate: send it alone.
				group = []*pending{pd}
				used++
				emit()
				continue
			}
		}
		if err := a.Add(pk, ehk, pd.rec.Data); err != nil {
			// Cannot happen after the checks above. Close the group, or
			// send the record plain (it fits), rather than lose it.
			if len(group) == 0 {
				group = []*pending{pd}
				used++
			}
			emit()
			continue
		}
		group = append(group, pd)
		used++
	}
	if len(group) > 0 {
		emit()
	}
	bytes := 0
	for _, pd := range q.recs[:used] {
		bytes += pd.size
	}
	p.popLocked(q, used, bytes)
}

// popLocked removes the first n records (bytes in all) from q and marks it
// busy when any were taken.
func (p *Producer) popLocked(q *shardQueue, n, bytes int) {
	if n == 0 {
		return
	}
	for _, pd := range q.recs[:n] {
		pd.sends++
		if pd.sends > 1 {
			p.stats.RecordsRetried++
		}
	}
	clear(q.recs[:n])
	q.recs = q.recs[n:]
	q.bytes -= bytes
	q.busy = true
}

// nextWakeLocked returns when the loop must look again: when the earliest
// backoff ends or linger passes on a queue that is not busy, or a shard
// map refresh asked for by a mismatch is due. false means nothing waits
// on time, or the wait ends with a poke.
func (p *Producer) nextWakeLocked(now time.Time) (time.Time, bool) {
	if p.inflight >= p.cfg.maxInFlight || p.holdLocked() {
		return time.Time{}, false // a sender or the shard map refresh will poke
	}
	var next time.Time
	if p.refreshWanted && !p.refreshing {
		next = p.lastRefresh.Add(refreshMismatch)
	}
	for _, q := range p.queues {
		if q.busy || len(q.recs) == 0 {
			continue
		}
		t := q.notBefore
		if !now.Before(t) {
			t = q.recs[0].enqueued.Add(p.cfg.linger)
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}
