package lease

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

func at(seq string) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: seq}}
}

func leases(owners ...string) []Lease {
	out := make([]Lease, len(owners))
	for i, o := range owners {
		out[i] = Lease{ShardID: fmt.Sprintf("s%02d", i), Owner: o, Epoch: 1, Checkpoint: at(checkpoint.TrimHorizon)}
	}
	return out
}

func workers(ids ...string) []Worker {
	out := make([]Worker, len(ids))
	for i, id := range ids {
		out[i] = Worker{ID: id, Heartbeat: 1}
	}
	return out
}

func heldBy(snap Snapshot, me string) map[string]int64 {
	h := map[string]int64{}
	for _, l := range snap.Leases {
		if l.Owner == me {
			h[l.ShardID] = l.Epoch
		}
	}
	return h
}

func TestLivenessUsesOnlyLocalClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	lv := newLiveness(10 * time.Second)
	// Wall-clock stamps written by other hosts are wildly skewed; they
	// must not matter.
	snap := Snapshot{Workers: []Worker{{ID: "A", Heartbeat: 5, UpdatedAt: t0.Add(-time.Hour)}, {ID: "B", Heartbeat: 9, UpdatedAt: t0.Add(time.Hour)}}}
	lv.observe(t0, snap)
	if !lv.alive("A", t0) || lv.expired("A", t0.Add(9*time.Second)) {
		t.Fatal("a worker first seen now is alive and not expired for a full duration")
	}
	snap.Workers[1].Heartbeat = 10 // B renews, A does not
	lv.observe(t0.Add(6*time.Second), snap)
	now := t0.Add(10 * time.Second)
	if lv.alive("A", now) || !lv.expired("A", now) {
		t.Fatal("A's counter did not change for 10s: want dead and expired")
	}
	if !lv.alive("B", now) || lv.expired("B", now) {
		t.Fatal("B renewed 4s ago: want alive")
	}
	// An owner with no worker item waits a full duration from first sighting.
	lv.observe(now, Snapshot{Workers: snap.Workers, Leases: []Lease{{ShardID: "s", Owner: "ghost"}}})
	if lv.alive("ghost", now) || lv.expired("ghost", now.Add(9*time.Second)) || !lv.expired("ghost", now.Add(10*time.Second)) {
		t.Fatal("ghost owner: want not alive, expired only after a full duration")
	}
}

func TestPlan(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := 10 * time.Second
	type tc struct {
		name      string
		snap      Snapshot
		me        string
		held      map[string]int64 // nil: derive from the table
		observeAt []time.Time      // observations before the plan; the last is "now"
		mutate    func(*Snapshot)  // applied after the first observation
		stopping  bool
		wantTakes int
		wantReq   int
		wantLost  []string
		wantHand  map[string]string
		wantTgt   int
	}
	tests := []tc{
		{
			name: "fresh table: first worker takes all", me: "A",
			snap:      Snapshot{Leases: leases("", "", "", ""), Workers: workers("A")},
			wantTakes: 4, wantTgt: 4,
		},
		{
			name: "two workers split unowned leases", me: "A",
			snap:      Snapshot{Leases: leases("", "", "", ""), Workers: workers("A", "B")},
			wantTakes: 2, wantTgt: 2,
		},
		{
			name: "live owner is not robbed even when its stamp is old", me: "B",
			snap:      Snapshot{Leases: leases("A", "A"), Workers: []Worker{{ID: "A", Heartbeat: 3, UpdatedAt: t0.Add(-24 * time.Hour)}, {ID: "B", Heartbeat: 1}}},
			wantTakes: 0, wantReq: 1, wantTgt: 1, // asks for one cooperatively, never takes
		},
		{
			name: "dead owner: all its leases taken in one pass", me: "B",
			snap:      Snapshot{Leases: leases("A", "A", "A", "B"), Workers: workers("A", "B")},
			observeAt: []time.Time{t0, t0.Add(d)},
			mutate:    func(s *Snapshot) { s.Workers[1].Heartbeat++ },
			wantTakes: 3, wantTgt: 4,
		},
		{
			name: "owner not yet expired: wait", me: "B",
			snap:      Snapshot{Leases: leases("A", "A", "A", "B"), Workers: workers("A", "B")},
			observeAt: []time.Time{t0, t0.Add(d - time.Millisecond)},
			mutate:    func(s *Snapshot) { s.Workers[1].Heartbeat++ },
			wantTakes: 0, wantReq: 1, wantTgt: 2,
		},
		{
			name: "own lease from a previous incarnation is taken back beyond target", me: "A",
			snap:      Snapshot{Leases: leases("A", "A", "A", "B"), Workers: workers("A", "B")},
			held:      map[string]int64{},
			wantTakes: 3, wantTgt: 2,
		},
		{
			name: "scale-out 3 -> 4 over 8 shards: two requests", me: "D",
			snap:    Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C"), Workers: workers("A", "B", "C", "D")},
			wantReq: 2, wantTgt: 2,
		},
		{
			name: "balanced 3,3,2: no thrash", me: "C",
			snap:    Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C"), Workers: workers("A", "B", "C")},
			wantReq: 0, wantTgt: 3,
		},
		{
			name: "9 leases 4 workers: 3,3,3,0 -> two requests", me: "D",
			snap:    Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C", "C"), Workers: workers("A", "B", "C", "D")},
			wantReq: 2, wantTgt: 3,
		},
		{
			name: "lost: table says another owner or another epoch", me: "A",
			snap: Snapshot{Leases: leases("B", "A", "A"), Workers: workers("A", "B")},
			held: map[string]int64{"s00": 1, "s01": 7, "s02": 1},
			// s00 now B's; s01's epoch moved (re-taken by an A incarnation elsewhere): both lost.
			wantLost: []string{"s00", "s01"}, wantTakes: 0, wantTgt: 2,
		},
		{
			name: "handoff requested by a live worker", me: "A",
			snap: func() Snapshot {
				s := Snapshot{Leases: leases("A", "A", "A"), Workers: workers("A", "B")}
				s.Leases[0].HandoffTo = "B"
				return s
			}(),
			wantHand: map[string]string{"s00": "B"}, wantTgt: 2,
		},
		{
			name: "children wait for every parent to end", me: "A",
			snap: Snapshot{Workers: workers("A"), Leases: []Lease{
				{ShardID: "p1", Checkpoint: at(checkpoint.ShardEnd)},
				{ShardID: "p2", Owner: "A", Epoch: 1, Checkpoint: at("5")},
				{ShardID: "c-merge", Parents: []string{"p1", "p2"}, Checkpoint: at(checkpoint.TrimHorizon)},
				{ShardID: "c-split", Parents: []string{"p1"}, Checkpoint: at(checkpoint.TrimHorizon)},
				{ShardID: "c-trimmed-parent", Parents: []string{"gone"}, Checkpoint: at(checkpoint.TrimHorizon)},
			}},
			wantTakes: 2, wantTgt: 3, // c-split and c-trimmed-parent; not c-merge, not p1 (ended)
		},
		{
			name: "stopping: takes nothing", me: "A", stopping: true,
			snap:      Snapshot{Leases: leases("", ""), Workers: workers("A", "B")},
			wantTakes: 0, wantTgt: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			times := tt.observeAt
			if len(times) == 0 {
				times = []time.Time{t0}
			}
			lv := newLiveness(d)
			snap := tt.snap
			for i, ts := range times {
				if i == 1 && tt.mutate != nil {
					tt.mutate(&snap)
				}
				lv.observe(ts, snap)
			}
			held := tt.held
			if held == nil {
				held = heldBy(snap, tt.me)
			}
			out := plan(planInput{me: tt.me, now: times[len(times)-1], snap: snap, live: lv, held: held, stopping: tt.stopping, rng: rand.New(rand.NewPCG(1, 2))})
			if len(out.takes) != tt.wantTakes {
				t.Errorf("takes = %v, want %d", out.takes, tt.wantTakes)
			}
			if len(out.requests) != tt.wantReq {
				t.Errorf("requests = %v, want %d", out.requests, tt.wantReq)
			}
			if out.target != tt.wantTgt {
				t.Errorf("target = %d, want %d", out.target, tt.wantTgt)
			}
			var lost []string
			for s := range out.lost {
				lost = append(lost, s)
			}
			sort.Strings(lost)
			if fmt.Sprint(lost) != fmt.Sprint(tt.wantLost) {
				t.Errorf("lost = %v, want %v", lost, tt.wantLost)
			}
			if tt.wantHand != nil && fmt.Sprint(out.handoffs) != fmt.Sprint(tt.wantHand) {
				t.Errorf("handoffs = %v, want %v", out.handoffs, tt.wantHand)
			}
			for _, r := range out.requests {
				if r.owner == tt.me {
					t.Errorf("requested own lease %s", r.shardID)
				}
			}
		})
	}
}

// TestPlanConverges simulates workers planning in turn against one table
// (takes and handoffs applied at once) and checks every processable lease
// ends up owned, spread within one of each other.
func TestPlanConverges(t *testing.T) {
	for _, tc := range []struct{ shards, workers int }{{8, 3}, {8, 4}, {1, 3}, {16, 5}, {9, 4}} {
		t.Run(fmt.Sprintf("%d shards %d workers", tc.shards, tc.workers), func(t *testing.T) {
			now := time.Unix(1000, 0)
			snap := Snapshot{Leases: leases(make([]string, tc.shards)...)}
			var ids []string
			for i := range tc.workers {
				ids = append(ids, fmt.Sprintf("w%d", i))
			}
			snap.Workers = workers(ids...)
			lvs := map[string]*liveness{}
			for _, id := range ids {
				lvs[id] = newLiveness(10 * time.Second)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for round := 0; round < 6; round++ {
				for _, id := range ids {
					lvs[id].observe(now, snap)
					out := plan(planInput{me: id, now: now, snap: snap, live: lvs[id], held: heldBy(snap, id), rng: rng})
					for i := range snap.Leases {
						l := &snap.Leases[i]
						if to, ok := out.handoffs[l.ShardID]; ok {
							l.Owner, l.HandoffTo = to, ""
							l.Epoch++
						}
						for _, tk := range out.takes {
							if tk.shardID == l.ShardID && tk.epoch == l.Epoch {
								l.Owner, l.HandoffTo = id, ""
								l.Epoch++
							}
						}
						for _, r := range out.requests {
							if r.shardID == l.ShardID && l.HandoffTo == "" {
								l.HandoffTo = id
							}
						}
					}
				}
			}
			count := map[string]int{}
			for _, l := range snap.Leases {
				if l.Owner == "" {
					t.Fatalf("lease %s unowned after convergence", l.ShardID)
				}
				count[l.Owner]++
			}
			lo, hi := tc.shards, 0
			for _, id := range ids {
				lo, hi = min(lo, count[id]), max(hi, count[id])
			}
			if hi-lo > 1 {
				t.Fatalf("unbalanced spread %v", count)
			}
		})
	}
}
