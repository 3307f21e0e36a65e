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
		out[i] = Lease{ShardID: fmt.Sprintf("s%03d", i), Owner: o, Epoch: 1, Checkpoint: at(checkpoint.TrimHorizon)}
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

func set(ids ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// TestLivenessTimesChangesFromAnswersAndStillnessFromRequests is defect 2:
// a read that answers late must not make a live worker look old. The old
// rule timed both ends from when answers arrived, so one slow scan after a
// fast one stretched the quiet period past the lease duration.
func TestLivenessTimesChangesFromAnswersAndStillnessFromRequests(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Second))) }
	lv := newLiveness(10 * time.Second)
	lv.observe("A", 7, s(0), s(0.1)) // fast read: counter 7 first seen
	lv.observe("A", 7, s(7.5), s(10.5))
	// The second read was sent at 7.5 s and held the item as of then; it
	// answered 3 s late. A renewed after it was read; the counter has been
	// still for at most 7.4 s as far as anyone can know.
	if exp, _ := lv.expired("A"); exp {
		t.Fatal("a late answer made a live worker expire")
	}
	lv.observe("A", 7, s(10.1), s(10.2))
	if exp, c := lv.expired("A"); !exp || c != 7 {
		t.Fatalf("counter unchanged from 0.1 s to a read sent at 10.1 s: want expired at 7, got %v at %d", exp, c)
	}
	// A new counter resets the clock, timed from the answer that showed it.
	lv.observe("A", 8, s(10.3), s(12))
	lv.observe("A", 8, s(21.9), s(22))
	if exp, _ := lv.expired("A"); exp {
		t.Fatal("counter 8 first seen at 12 s, still at a read sent at 21.9 s: not yet 10 s")
	}
	lv.observe("A", 8, s(22), s(22.1))
	if exp, _ := lv.expired("A"); !exp {
		t.Fatal("want expired once a read sent 10 s after the change still shows it")
	}
	// Wall-clock stamps written by other hosts are never looked at: the
	// type has no place for them. An owner without an item (-1) gets the
	// full duration from when it was first noticed.
	lv.observe("ghost", -1, s(30), s(30.5))
	lv.observe("ghost", -1, s(40.4), s(40.5))
	if exp, _ := lv.expired("ghost"); exp {
		t.Fatal("ghost first noticed at 30.5 s expired before 40.5 s")
	}
	lv.observe("ghost", -1, s(40.5), s(40.6))
	if exp, c := lv.expired("ghost"); !exp || c != -1 {
		t.Fatal("ghost: want expired with counter -1")
	}
}

func TestPlan(t *testing.T) {
	type tc struct {
		name      string
		snap      Snapshot
		me        string
		live      []string // other live workers
		dead      []string
		held      map[string]int64 // nil: derive from the table
		incoming  []string
		stopping  bool
		wantTakes int
		wantReq   int
		wantLost  []string
		wantConf  []string
		wantHand  map[string]string
		wantRef   int
		wantTgt   int
		// Why, checked when set: takes counted by reason, lost leases
		// with theirs, refusals' reasons in order.
		wantTakeWhy map[takeReason]int
		wantLostWhy map[string]loss
		wantRefWhy  []refuseReason
	}
	handoff := func(s Snapshot, to string, idx ...int) Snapshot {
		for _, i := range idx {
			s.Leases[i].HandoffTo = to
		}
		return s
	}
	tests := []tc{
		{name: "fresh table: first worker takes all", me: "A",
			snap: Snapshot{Leases: leases("", "", "", "")}, wantTakes: 4, wantTgt: 4, wantTakeWhy: map[takeReason]int{takeUnowned: 4}},
		{name: "two workers split unowned leases", me: "A", live: []string{"B"},
			snap: Snapshot{Leases: leases("", "", "", "")}, wantTakes: 2, wantTgt: 2},
		{name: "a live owner is never robbed: ask instead", me: "B", live: []string{"A"},
			snap: Snapshot{Leases: leases("A", "A")}, wantReq: 1, wantTgt: 1},
		{name: "an owner not yet declared dead keeps its leases", me: "B",
			snap: Snapshot{Leases: leases("A", "A", "A", "B")}, wantTgt: 4},
		{name: "declared dead: all its leases taken in one pass", me: "B", dead: []string{"A"},
			snap: Snapshot{Leases: leases("A", "A", "A", "B")}, wantTakes: 3, wantTgt: 4, wantTakeWhy: map[takeReason]int{takeFromDead: 3}},
		{name: "own lease not held here (handed over, or dropped) is taken beyond target", me: "A", live: []string{"B"},
			snap: Snapshot{Leases: leases("A", "A", "A", "B")}, held: map[string]int64{}, wantTakes: 3, wantTgt: 2, wantTakeWhy: map[takeReason]int{takeOwn: 3}},
		{name: "own leases first and beyond target, then a dead owner's up to target", me: "A", live: []string{"B"}, dead: []string{"C"},
			// 6 processable, 2 workers: target 3. Both own, then one of C's.
			snap: Snapshot{Leases: leases("A", "A", "C", "C", "C", "C")}, held: map[string]int64{}, wantTakes: 3, wantTgt: 3,
			wantTakeWhy: map[takeReason]int{takeOwn: 2, takeFromDead: 1}},
		{name: "a previous incarnation of the same worker id is another owner", me: "w~2", live: []string{"w~1"},
			snap: Snapshot{Leases: leases("w~1", "w~1")}, held: map[string]int64{}, wantReq: 1, wantTgt: 1},
		{name: "scale-out 3 -> 4 over 8 shards: two requests", me: "D", live: []string{"A", "B", "C"},
			snap: Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C")}, wantReq: 2, wantTgt: 2},
		{name: "balanced 3,3,2: no thrash", me: "C", live: []string{"A", "B"},
			snap: Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C")}, wantTgt: 3},
		{name: "9 leases 4 workers: 3,3,3,0 -> two requests", me: "D", live: []string{"A", "B", "C"},
			snap: Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C", "C")}, wantReq: 2, wantTgt: 3},
		{name: "pending requests count: no second request for the same need", me: "D", live: []string{"A", "B", "C"},
			snap: handoff(Snapshot{Leases: leases("A", "A", "A", "B", "B", "B", "C", "C")}, "D", 0), incoming: []string{"s003"}, wantReq: 0, wantTgt: 2},
		{name: "leases promised to another requester are not counted for the donor", me: "C", live: []string{"A", "B"},
			// A holds 6 but 2 are promised to B: A will hold 4, B 2; floor 2, C has 0.
			snap: handoff(Snapshot{Leases: leases("A", "A", "A", "A", "A", "A")}, "B", 0, 1), wantReq: 2, wantTgt: 2},
		{name: "lost: newer epoch or another owner; an older epoch is a stale read", me: "A", live: []string{"B"},
			snap: Snapshot{Leases: leases("B", "A", "A")}, held: map[string]int64{"s000": 1, "s001": 0, "s002": 3},
			wantLost: []string{"s000", "s001"}, wantTgt: 2,
			wantLostWhy: map[string]loss{"s000": {lostTakenBy, "B"}, "s001": {lostEpochMoved, "A"}}},
		{name: "missing from an eventually consistent read: confirm, do not drop", me: "A",
			snap: Snapshot{Leases: leases("A")}, held: map[string]int64{"s000": 1, "s999": 1}, wantConf: []string{"s999"}, wantTgt: 1},
		{name: "handoff honoured while it helps", me: "A", live: []string{"B"},
			snap: handoff(Snapshot{Leases: leases("A", "A", "A")}, "B", 0), wantHand: map[string]string{"s000": "B"}, wantTgt: 2},
		{name: "handoff refused when it would not help", me: "A", live: []string{"B"},
			// A 2, B 2 (+1 requested): moving one would leave A 1, B 3.
			snap: handoff(Snapshot{Leases: leases("A", "A", "B", "B")}, "B", 0), wantRef: 1, wantTgt: 2, wantRefWhy: []refuseReason{refuseNoBetter}},
		{name: "handoff refused when the requester is not alive", me: "A",
			snap: handoff(Snapshot{Leases: leases("A", "A", "A")}, "gone", 0), wantRef: 1, wantTgt: 3, wantRefWhy: []refuseReason{refuseNotAlive}},
		{name: "many requesters cannot drain the owner below floor", me: "A", live: []string{"B", "C", "D"},
			// A holds 8 of 8, each of B, C, D asked for 2: floor 2, A gives 6.
			snap:     handoff(handoff(handoff(Snapshot{Leases: leases("A", "A", "A", "A", "A", "A", "A", "A")}, "B", 0, 1), "C", 2, 3), "D", 4, 5),
			wantHand: map[string]string{"s000": "B", "s001": "B", "s002": "C", "s003": "C", "s004": "D", "s005": "D"}, wantTgt: 2},
		{name: "children wait for every parent to end", me: "A",
			snap: Snapshot{Leases: []Lease{
				{ShardID: "p1", Checkpoint: at(checkpoint.ShardEnd)},
				{ShardID: "p2", Owner: "A", Epoch: 1, Checkpoint: at("5")},
				{ShardID: "c-merge", Parents: []string{"p1", "p2"}, Checkpoint: at(checkpoint.TrimHorizon)},
				{ShardID: "c-split", Parents: []string{"p1"}, Checkpoint: at(checkpoint.TrimHorizon)},
				{ShardID: "c-trimmed-parent", Parents: []string{"gone"}, Checkpoint: at(checkpoint.TrimHorizon)},
			}},
			wantTakes: 2, wantTgt: 3}, // c-split and c-trimmed-parent; not c-merge, not p1 (ended)
		{name: "stopping: takes and asks nothing", me: "A", live: []string{"B"}, stopping: true,
			snap: Snapshot{Leases: leases("", "")}, wantTgt: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := tt.held
			if held == nil {
				held = heldBy(tt.snap, tt.me)
			}
			out := plan(planInput{me: tt.me, snap: tt.snap, live: set(tt.live...), dead: set(tt.dead...), held: held,
				incoming: set(tt.incoming...), stopping: tt.stopping, rng: rand.New(rand.NewPCG(1, 2))})
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
			if fmt.Sprint(out.confirm) != fmt.Sprint(tt.wantConf) {
				t.Errorf("confirm = %v, want %v", out.confirm, tt.wantConf)
			}
			if tt.wantHand != nil && fmt.Sprint(out.handoffs) != fmt.Sprint(tt.wantHand) {
				t.Errorf("handoffs = %v, want %v", out.handoffs, tt.wantHand)
			}
			if len(out.refusals) != tt.wantRef {
				t.Errorf("refusals = %v, want %d", out.refusals, tt.wantRef)
			}
			if tt.wantTakeWhy != nil {
				why := map[takeReason]int{}
				for _, tk := range out.takes {
					why[tk.reason]++
					if (tk.reason == takeFromDead) != (tk.from != "") || tk.from != "" && !set(tt.dead...)[tk.from] {
						t.Errorf("take %+v: from must name the dead owner, and only then", tk)
					}
				}
				if fmt.Sprint(why) != fmt.Sprint(tt.wantTakeWhy) {
					t.Errorf("takes by reason = %v, want %v", why, tt.wantTakeWhy)
				}
			}
			if tt.wantLostWhy != nil && fmt.Sprint(out.lost) != fmt.Sprint(tt.wantLostWhy) {
				t.Errorf("lost = %v, want %v", out.lost, tt.wantLostWhy)
			}
			if tt.wantRefWhy != nil {
				var why []refuseReason
				for _, r := range out.refusals {
					why = append(why, r.reason)
				}
				if fmt.Sprint(why) != fmt.Sprint(tt.wantRefWhy) {
					t.Errorf("refusals = %v, want %v", why, tt.wantRefWhy)
				}
			}
			for _, r := range out.requests {
				if r.owner == tt.me {
					t.Errorf("requested own lease %s", r.shardID)
				}
			}
		})
	}
}

// sim runs workers planning against one table. Each round every worker
// plans; with parallel set they all plan from the same copy of the table
// (the worst case of concurrent passes), else one after another. Writes
// are applied as the store would: conditional on what they were decided
// from. A handoff completes in the round after the owner agreed to it.
type sim struct {
	t        *testing.T
	snap     Snapshot
	ids      []string
	rng      *rand.Rand
	parallel bool
	requests int
	moves    int
	pending  map[string]map[string]bool // worker -> shards it asked for
	agreed   map[string]string          // shard -> requester the owner agreed to
}

func newSim(t *testing.T, snap Snapshot, ids []string, parallel bool) *sim {
	return &sim{t: t, snap: snap, ids: ids, rng: rand.New(rand.NewPCG(3, 4)), parallel: parallel, pending: map[string]map[string]bool{}, agreed: map[string]string{}}
}

func (s *sim) lease(shard string) *Lease {
	for i := range s.snap.Leases {
		if s.snap.Leases[i].ShardID == shard {
			return &s.snap.Leases[i]
		}
	}
	return nil
}

func (s *sim) round() bool {
	changed := false
	// Owners that agreed last round transfer now (they finished a batch).
	for shard, to := range s.agreed {
		if l := s.lease(shard); l != nil && l.HandoffTo == to {
			l.Owner, l.HandoffTo = to, ""
			l.Epoch++
			s.moves++
			changed = true
		}
	}
	s.agreed = map[string]string{}
	view := s.snap
	if s.parallel {
		view.Leases = append([]Lease(nil), s.snap.Leases...)
	}
	for _, id := range s.ids {
		if !s.parallel {
			view = s.snap
		}
		live := map[string]bool{}
		for _, o := range s.ids {
			if o != id {
				live[o] = true
			}
		}
		if s.pending[id] == nil {
			s.pending[id] = map[string]bool{}
		}
		for shard := range s.pending[id] {
			if l := s.lease(shard); l == nil || (l.HandoffTo != id && l.Owner != id) || l.Owner == id {
				delete(s.pending[id], shard)
			}
		}
		out := plan(planInput{me: id, snap: view, held: heldBy(view, id), live: live, incoming: s.pending[id], rng: s.rng})
		for shard, to := range out.handoffs {
			s.agreed[shard] = to
		}
		for _, r := range out.refusals {
			if l := s.lease(r.shardID); l != nil && l.HandoffTo == r.requester {
				l.HandoffTo = ""
				changed = true
			}
		}
		for _, tk := range out.takes {
			if l := s.lease(tk.shardID); l != nil && l.Epoch == tk.epoch {
				l.Owner, l.HandoffTo = id, ""
				l.Epoch++
				changed = true
			}
		}
		for _, r := range out.requests {
			s.requests++
			if l := s.lease(r.shardID); l != nil && l.Owner == r.owner && l.Epoch == r.epoch && l.HandoffTo == "" {
				l.HandoffTo = id
				s.pending[id][r.shardID] = true
				changed = true
			}
		}
	}
	return changed || len(s.agreed) > 0
}

func (s *sim) run(rounds int) int {
	for r := 0; r < rounds; r++ {
		if !s.round() {
			return r
		}
	}
	s.t.Fatalf("not converged after %d rounds", rounds)
	return rounds
}

func (s *sim) spread() (lo, hi int, counts map[string]int) {
	counts = map[string]int{}
	for _, l := range s.snap.Leases {
		if l.Owner == "" {
			s.t.Fatalf("lease %s unowned after convergence", l.ShardID)
		}
		counts[l.Owner]++
	}
	lo, hi = len(s.snap.Leases), 0
	for _, id := range s.ids {
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	return lo, hi, counts
}

func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("w%02d", i))
	}
	return out
}

// TestPlanConverges: every processable lease ends up owned, spread within
// one, from an empty table.
func TestPlanConverges(t *testing.T) {
	for _, tc := range []struct{ shards, workers int }{{8, 3}, {8, 4}, {1, 3}, {16, 5}, {9, 4}, {64, 20}} {
		for _, parallel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d shards %d workers parallel=%v", tc.shards, tc.workers, parallel), func(t *testing.T) {
				s := newSim(t, Snapshot{Leases: leases(make([]string, tc.shards)...)}, ids(tc.workers), parallel)
				s.run(40)
				if lo, hi, counts := s.spread(); hi-lo > 1 {
					t.Fatalf("unbalanced spread %v", counts)
				}
			})
		}
	}
}

// TestPlanMovesAtMostMinimumPlusTenPercent is defect 7: one worker holds
// 64 leases and 19 join. 60 moves suffice (64 over 20 workers: four keep
// 4, sixteen get 3, and the old owner keeps 4). Donor counts used to
// include leases already promised to other requesters, and requesters
// grabbed the ceiling while others were below the floor: 98 moves and
// 680 requests were measured.
func TestPlanMovesAtMostMinimumPlusTenPercent(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		t.Run(fmt.Sprintf("parallel=%v", parallel), func(t *testing.T) {
			owners := make([]string, 64)
			for i := range owners {
				owners[i] = "w00"
			}
			s := newSim(t, Snapshot{Leases: leases(owners...)}, ids(20), parallel)
			rounds := s.run(60)
			lo, hi, counts := s.spread()
			t.Logf("%d moves, %d requests, %d rounds, spread %d-%d", s.moves, s.requests, rounds, lo, hi)
			if hi-lo > 1 {
				t.Fatalf("unbalanced spread %v", counts)
			}
			if s.moves > 66 {
				t.Errorf("%d planned moves; the minimum is 60, allowed 66", s.moves)
			}
			if s.requests > 2*66 {
				t.Errorf("%d handoff requests for %d moves", s.requests, s.moves)
			}
		})
	}
}

// TestPlanScaleOut: workers hold 50 leases each and a tenth more join,
// every worker planning from the same round's view. Asking for one more,
// every worker at floor used to pick the same most loaded donor, which
// agreed to one or two requests and refused the rest: at 200 + 20
// workers on 10,000 leases the spread was still 45 to 47 after 60 rounds
// (the bench: 2.5 minutes, until the scan interval). The minimum moves
// are floor × joining. The 4,000-lease case runs under -short: it
// converges in 9 rounds, and without the fix needs 33 (so it fails at
// its limit of 20); the 10,000-lease case is the bench's size.
func TestPlanScaleOut(t *testing.T) {
	for _, tc := range []struct {
		workers, join, rounds int
		short                 bool
	}{
		{workers: 80, join: 8, rounds: 20, short: true},
		{workers: 200, join: 20, rounds: 40},
	} {
		t.Run(fmt.Sprintf("%d leases, %d+%d workers", 50*tc.workers, tc.workers, tc.join), func(t *testing.T) {
			if testing.Short() && !tc.short {
				t.Skip("plans 10,000 leases 220 times a round")
			}
			owners := make([]string, 50*tc.workers)
			for i := range owners {
				owners[i] = fmt.Sprintf("w%02d", i%tc.workers)
			}
			s := newSim(t, Snapshot{Leases: leases(owners...)}, ids(tc.workers+tc.join), true)
			rounds := s.run(tc.rounds)
			lo, hi, counts := s.spread()
			t.Logf("%d moves, %d requests, %d rounds, spread %d-%d", s.moves, s.requests, rounds, lo, hi)
			if hi-lo > 1 {
				t.Fatalf("unbalanced spread %v", counts)
			}
			minimum := 50 * tc.workers / (tc.workers + tc.join) * tc.join // each joiner reaches floor
			if s.moves > minimum*11/10 {
				t.Errorf("%d planned moves; the minimum is %d, allowed %d", s.moves, minimum, minimum*11/10)
			}
		})
	}
}
