package bench

import (
	"fmt"
	"sort"
	"time"

	"github.com/leasehold/leasehold/processors/filesink"
)

// Takeover is one change of a shard's lease epoch as seen in what the
// sinks received: the previous grant's records against the next one's.
type Takeover struct {
	Shard    string
	From, To int64  // lease epochs
	FromID   string // worker ids
	ToID     string
	// Gap is from the previous grant's last record to the next one's
	// first (negative when they overlap).
	Gap time.Duration
	// Late counts records processed under an older epoch after the first
	// record of this one, and Overlap is how long after it the last of
	// them came. Both are 0 when promise 1 holds.
	Late    int
	Overlap time.Duration
	// FirstAt is when the newer grant processed its first record.
	FirstAt time.Time
}

// Takeovers compares, for every shard, each epoch's records with those of
// every older epoch (the sink lines carry the epoch they were processed
// under). It returns one Takeover per epoch change (against the epoch just
// before), with Late and Overlap counted against every older epoch, and
// an error for lines without an epoch.
func Takeovers(lines []filesink.Line) ([]Takeover, error) {
	type grant struct {
		worker      string
		first, last time.Time
		times       []time.Time
	}
	byShard := map[string]map[int64]*grant{}
	for _, l := range lines {
		if l.Epoch == 0 {
			return nil, fmt.Errorf("sink line of shard %s, sequence %s, has no lease epoch", l.ShardID, l.SequenceNumber)
		}
		m := byShard[l.ShardID]
		if m == nil {
			m = map[int64]*grant{}
			byShard[l.ShardID] = m
		}
		g := m[l.Epoch]
		if g == nil {
			g = &grant{worker: l.WorkerID, first: l.ProcessedAt, last: l.ProcessedAt}
			m[l.Epoch] = g
		}
		if l.ProcessedAt.Before(g.first) {
			g.first = l.ProcessedAt
		}
		if l.ProcessedAt.After(g.last) {
			g.last = l.ProcessedAt
		}
		g.times = append(g.times, l.ProcessedAt)
	}
	var out []Takeover
	for shard, m := range byShard {
		var epochs []int64
		for e := range m {
			epochs = append(epochs, e)
		}
		sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
		for i := 1; i < len(epochs); i++ {
			next, prev := m[epochs[i]], m[epochs[i-1]]
			to := Takeover{Shard: shard, From: epochs[i-1], To: epochs[i], FromID: prev.worker, ToID: next.worker, Gap: next.first.Sub(prev.last), FirstAt: next.first}
			for _, e := range epochs[:i] {
				for _, at := range m[e].times {
					if at.After(next.first) {
						to.Late++
						to.Overlap = max(to.Overlap, at.Sub(next.first))
					}
				}
			}
			out = append(out, to)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstAt.Before(out[j].FirstAt) })
	return out, nil
}
