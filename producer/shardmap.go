package producer

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/kpl"
)

// shardRange is one shard's inclusive slice of the hash ring.
type shardRange struct {
	id         string
	start, end kpl.HashKey
}

// shardMap routes hash keys to shards. real is false for the virtual map
// of equal ranges used while the stream's own map is unknown.
type shardMap struct {
	real   bool
	ranges []shardRange // sorted by start, covering the ring
}

// virtualMap splits the ring into virtualShards equal ranges (a power of
// two, so the boundaries are exact).
func virtualMap() shardMap {
	const shift = 64 - 3 // log2(virtualShards) == 3
	m := shardMap{ranges: make([]shardRange, virtualShards)}
	for i := range virtualShards {
		m.ranges[i] = shardRange{
			id:    fmt.Sprintf("virtual-%d", i),
			start: kpl.HashKey{Hi: uint64(i) << shift},
			end:   kpl.HashKey{Hi: uint64(i)<<shift | (1<<shift - 1), Lo: ^uint64(0)},
		}
	}
	return m
}

// find returns the index of the range holding h. Should the map have a
// gap, h goes to the next range up (or the last one).
func (m shardMap) find(h kpl.HashKey) int {
	i := sort.Search(len(m.ranges), func(i int) bool { return m.ranges[i].end.Cmp(h) >= 0 })
	return min(i, len(m.ranges)-1)
}

func (m shardMap) equal(o shardMap) bool {
	return m.real == o.real && slices.Equal(m.ranges, o.ranges)
}

// listShards reads the stream's open shards. It blocks for the ListShards
// calls (bounded by the request timeout each).
func (p *Producer) listShards(ctx context.Context) (shardMap, error) {
	m := shardMap{real: true}
	in := &kinesis.ListShardsInput{StreamName: aws.String(p.stream)}
	for {
		callCtx, cancel := context.WithTimeout(ctx, p.cfg.requestTimeout)
		out, err := p.client.ListShards(callCtx, in)
		cancel()
		if err != nil {
			return shardMap{}, fmt.Errorf("list shards of %s: %w", p.stream, err)
		}
		for _, s := range out.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed by a reshard: takes no writes
			}
			if s.HashKeyRange == nil || s.ShardId == nil {
				return shardMap{}, fmt.Errorf("list shards of %s: shard without id or hash range", p.stream)
			}
			start, err := kpl.ParseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey))
			if err != nil {
				return shardMap{}, fmt.Errorf("list shards of %s: shard %s: %w", p.stream, *s.ShardId, err)
			}
			end, err := kpl.ParseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey))
			if err != nil {
				return shardMap{}, fmt.Errorf("list shards of %s: shard %s: %w", p.stream, *s.ShardId, err)
			}
			m.ranges = append(m.ranges, shardRange{id: *s.ShardId, start: start, end: end})
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		// With a NextToken, ListShards rejects a StreamName.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(m.ranges) == 0 {
		return shardMap{}, fmt.Errorf("list shards of %s: no open shards", p.stream)
	}
	sort.Slice(m.ranges, func(i, j int) bool { return m.ranges[i].start.Cmp(m.ranges[j].start) < 0 })
	return m, nil
}

// Refresh timing.
const (
	refreshRetry    = 30 * time.Second // after a failed ListShards
	refreshMismatch = 5 * time.Second  // least gap between mismatch-driven refreshes
)

// maybeRefreshLocked starts a shard map refresh in the background when one
// is due: never loaded, periodic, or asked for by a shard mismatch. The
// goroutine is tracked by wg and bound to ctx, the send loop's context.
func (p *Producer) maybeRefreshLocked(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	if !p.cfg.shardMap || p.refreshing {
		return
	}
	due := !now.Before(p.nextRefresh) ||
		(p.refreshWanted && !now.Before(p.lastRefresh.Add(refreshMismatch)))
	if !due {
		return
	}
	p.refreshing = true
	p.refreshWanted = false
	p.lastRefresh = now
	wg.Go(func() {
		m, err := p.listShards(ctx)
		p.mu.Lock()
		p.refreshing = false
		if ctx.Err() != nil {
			// The loop is stopping; whoever runs it next asks again.
			p.refreshWanted = true
			p.mu.Unlock()
			return
		}
		p.mapLoaded = true
		now := p.cfg.clock.Now()
		if err != nil {
			p.nextRefresh = now.Add(min(p.cfg.shardMapRefresh, refreshRetry))
			p.mu.Unlock()
			p.log.Warn("shard map refresh failed; routing by hash ranges until it works", zap.Error(err))
			p.poke()
			return
		}
		p.nextRefresh = now.Add(p.cfg.shardMapRefresh)
		p.stats.ShardMapRefreshes++
		if !m.equal(p.smap) {
			p.pendingMap = &m
		}
		p.mu.Unlock()
		p.poke()
	})
}

// applyMapLocked swaps in a newer shard map once no call is in flight, so
// no shard has records in two calls at once. Queued records are re-routed
// queue by queue in order, so records of one partition key (which share a
// queue before and after) keep their order.
func (p *Producer) applyMapLocked() {
	if p.pendingMap == nil || p.inflight > 0 {
		return
	}
	m := *p.pendingMap
	p.pendingMap = nil
	queues := make([]*shardQueue, len(m.ranges))
	for i, r := range m.ranges {
		q := &shardQueue{id: r.id, quota: p.cfg.batchRecords}
		// Inherit the most cautious throttling state of the old ranges
		// this one overlaps, so a switch of maps (virtual to real, or a
		// reshard) does not forget a backoff in progress.
		for j, o := range p.smap.ranges {
			if o.start.Cmp(r.end) > 0 || o.end.Cmp(r.start) < 0 {
				continue
			}
			oq := p.queues[j]
			q.quota = min(q.quota, oq.quota)
			q.throttleStreak = max(q.throttleStreak, oq.throttleStreak)
			if oq.notBefore.After(q.notBefore) {
				q.notBefore = oq.notBefore
			}
		}
		queues[i] = q
	}
	for _, o := range p.queues {
		for _, pd := range o.recs {
			q := queues[m.find(pd.hash)]
			q.recs = append(q.recs, pd)
			q.bytes += pd.size
		}
	}
	p.smap, p.queues = m, queues
	p.log.Info("shard map updated", zap.Int("shards", len(m.ranges)), zap.Bool("real", m.real))
}
