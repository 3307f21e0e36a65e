package lease

import (
	"math/rand/v2"
	"sort"
	"time"
)

// planInput is everything one coordination pass decides from.
type planInput struct {
	me       string
	snap     Snapshot
	held     map[string]int64 // shard -> epoch this process holds and processes
	dead     map[string]bool  // identities declared dead
	live     map[string]bool  // other identities counted for balance: alive, not stopping, not dead
	incoming map[string]bool  // shards this worker asked for whose handoff is pending
	noTake   map[string]bool  // own leases not to take back yet (dropped after a failure: backing off)
	stopping bool             // shutting down: take nothing, request nothing
	rng      *rand.Rand
}

// takeReason says why a pass takes a lease. It decides the order of the
// takes and whether target caps them: own leases first and always.
type takeReason int

const (
	// takeOwn: the lease is this identity's in the table but not held
	// here (handed over to it, or dropped after a failure and backed
	// off). Taken regardless of target.
	takeOwn takeReason = iota + 1
	// takeUnowned: nobody owns the lease (new, or released). Up to target.
	takeUnowned
	// takeFromDead: the owner was declared dead. Up to target.
	takeFromDead
)

func (r takeReason) String() string {
	switch r {
	case takeOwn:
		return "own lease not held here"
	case takeUnowned:
		return "unowned"
	case takeFromDead:
		return "owner declared dead"
	}
	return "unknown"
}

type take struct {
	shardID string
	epoch   int64
	reason  takeReason
	from    string // the dead owner, for takeFromDead
	// at is the lease's UpdatedAt as seen: for a lease a live owner
	// handed over or released, when it wrote that, by its clock.
	at time.Time
}

type request struct {
	shardID string
	owner   string
	epoch   int64
}

// refuseReason says why a handoff request on an own lease is cancelled.
type refuseReason int

const (
	// refuseNotAlive: the requester is not counted alive (dead, stopping
	// or unknown).
	refuseNotAlive refuseReason = iota + 1
	// refuseNoBetter: the move would not improve the balance.
	refuseNoBetter
)

func (r refuseReason) String() string {
	switch r {
	case refuseNotAlive:
		return "requester not alive"
	case refuseNoBetter:
		return "would not improve the balance"
	}
	return "unknown"
}

type refusal struct {
	shardID   string
	requester string
	reason    refuseReason
}

// lossReason says why a lease held here is lost.
type lossReason int

const (
	// lostEpochMoved: the table's epoch is newer than the one held.
	lostEpochMoved lossReason = iota + 1
	// lostTakenBy: same epoch, another owner.
	lostTakenBy
)

// loss is a lease held here that the table says is no longer this
// worker's, and who has it now ("" when released).
type loss struct {
	reason lossReason
	owner  string
}

func (l loss) String() string {
	switch l.reason {
	case lostEpochMoved:
		return "epoch moved to " + ownerName(l.owner)
	case lostTakenBy:
		return "taken by " + ownerName(l.owner)
	}
	return "unknown"
}

// planOutput is what the pass should do.
type planOutput struct {
	lost     map[string]loss   // shard -> why: held here, but the table says otherwise
	confirm  []string          // held here but missing from the read: confirm with a strong read
	handoffs map[string]string // shard -> requester: hand over after the in-flight batch
	refusals []refusal         // requests on our leases to cancel
	takes    []take
	requests []request
	floor    int // every live worker should hold at least this many
	target   int // and at most this many (floor, or floor+1 when it does not divide)
	// settled is false while this worker should look again soon: it asked
	// for leases, or it is below floor. lookAgain is true when it is
	// settled but the fleet is not balanced as it sees it (it could take
	// one more once nobody is below floor, or someone is outside
	// floor..target): worth a look now and then, not every pass.
	settled, lookAgain bool
	// untaken counts processable leases nobody live owns (unowned, or
	// owned by a worker declared dead) that this plan does not take.
	untaken int
	// What the plan saw, for telling one look from the next: live workers
	// (others) below floor and above target, the most any of them holds,
	// and this worker's own count.
	below, above, most, mine int
}

// plan decides one pass. It is a pure function of its input so that the
// lease logic can be tested with a made-up table. The read it works from is
// eventually consistent: every write it asks for is conditional, so a stale
// read costs a failed write, never safety.
//
// Rules, in order:
//  1. A lease held here whose table epoch is newer, or whose owner is
//     another, is lost. An older epoch is a stale read and ignored; a lease
//     missing from the read is confirmed with a strong read first.
//  2. Processable leases are the ones not ended whose parents have all
//     ended (or are gone from the table). With P of them and N live
//     workers, everyone should end with floor = P/N or target = ⌈P/N⌉.
//  3. Handoff requests on held leases are honoured only while the move
//     helps: this worker keeps at least floor, and the requester is below
//     floor or at least two behind. Others are refused (cancelled), as are
//     requests from workers that are not alive. The owner judges from its
//     own exact count, so concurrent requesters cannot drain it.
//  4. Take: leases owned by this identity but not held (granted by a
//     handoff, or dropped after a failure) are always taken; unowned leases
//     and leases of workers declared dead are taken up to target, in random
//     order so that workers racing for the same orphans mostly pick
//     different ones.
//  5. Request: while below floor, ask the most loaded live worker above
//     floor for one lease; once at floor, ask for one more only if no other
//     live worker is below floor and some worker holds at least two more.
//     Counts exclude leases already promised to a requester and include
//     leases promised to this worker, so requests are never doubled.
func plan(in planInput) planOutput {
	out := planOutput{lost: map[string]loss{}, handoffs: map[string]string{}}
	// Only parents need looking up by id; a table of 10,000 leases has few.
	parents := map[string]*Lease{}
	for _, l := range in.snap.Leases {
		for _, p := range l.Parents {
			parents[p] = nil
		}
	}
	index := make(map[string]int, len(in.held))
	for i := range in.snap.Leases {
		l := &in.snap.Leases[i]
		if _, ok := parents[l.ShardID]; ok {
			parents[l.ShardID] = l
		}
		if _, ok := in.held[l.ShardID]; ok {
			index[l.ShardID] = i
		}
	}

	type candidate struct{ shard, requester string }
	var candidates []candidate
	for shard, epoch := range in.held {
		i, ok := index[shard]
		if !ok {
			out.confirm = append(out.confirm, shard)
			continue
		}
		l := in.snap.Leases[i]
		switch {
		case l.Epoch < epoch:
			// stale read: we took it after this copy was made
		case l.Epoch > epoch:
			out.lost[shard] = loss{lostEpochMoved, l.Owner}
		case l.Owner != in.me:
			out.lost[shard] = loss{lostTakenBy, l.Owner}
		case l.HandoffTo != "" && l.HandoffTo != in.me:
			candidates = append(candidates, candidate{shard, l.HandoffTo})
		}
	}
	sort.Strings(out.confirm)

	workers := len(in.live)
	if !in.stopping {
		workers++
	}
	workers = max(workers, 1)

	processable := 0
	eff := map[string]int{} // live worker -> processable leases it will hold: owned, minus promised away, plus promised to it
	mine := 0
	incoming := map[string]bool{}
	for s := range in.incoming {
		incoming[s] = true
	}
	var takeable []take
	ok := make([]bool, len(in.snap.Leases)) // processable
	for i, l := range in.snap.Leases {
		if l.Ended() || !parentsEnded(l, parents) {
			continue
		}
		ok[i] = true
		processable++
		_, isHeld := in.held[l.ShardID]
		if _, lost := out.lost[l.ShardID]; isHeld && !lost {
			mine++
		}
		promised := l.HandoffTo != "" && l.HandoffTo != l.Owner
		switch {
		case l.Owner == in.me && !isHeld:
			if !in.noTake[l.ShardID] {
				takeable = append(takeable, take{l.ShardID, l.Epoch, takeOwn, "", l.UpdatedAt})
			}
			continue
		case l.Owner == "":
			takeable = append(takeable, take{l.ShardID, l.Epoch, takeUnowned, "", l.UpdatedAt})
			continue
		case l.Owner != in.me && in.dead[l.Owner]:
			takeable = append(takeable, take{l.ShardID, l.Epoch, takeFromDead, l.Owner, l.UpdatedAt})
			continue
		case in.live[l.Owner]:
			eff[l.Owner]++
			if promised {
				eff[l.Owner]--
			}
		}
		if promised {
			if l.HandoffTo == in.me {
				incoming[l.ShardID] = true
			} else if in.live[l.HandoffTo] {
				eff[l.HandoffTo]++
			}
		}
	}
	for s := range incoming {
		if _, isHeld := in.held[s]; !isHeld {
			mine++
		}
	}
	out.floor = processable / workers
	out.target = (processable + workers - 1) / workers
	if in.stopping {
		out.settled = true
		return out
	}

	// 3. Requests on our leases, the neediest requester first. The
	// owner's count: what it processes, plus own leases it takes back in
	// this pass (just handed to it, say).
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if eff[a.requester] != eff[b.requester] {
			return eff[a.requester] < eff[b.requester]
		}
		return a.shard < b.shard
	})
	heldNow := 0
	for s := range in.held {
		if _, lost := out.lost[s]; !lost {
			heldNow++
		}
	}
	for _, t := range takeable {
		if t.reason == takeOwn {
			heldNow++
		}
	}
	for _, cd := range candidates {
		their := eff[cd.requester] - 1 // without this lease
		switch {
		case !in.live[cd.requester]:
			out.refusals = append(out.refusals, refusal{cd.shard, cd.requester, refuseNotAlive})
		case heldNow-1 >= out.floor && (their < out.floor || heldNow-their >= 2):
			out.handoffs[cd.shard] = cd.requester
			heldNow--
			mine--
		default:
			out.refusals = append(out.refusals, refusal{cd.shard, cd.requester, refuseNoBetter})
		}
	}

	// 4. Takes.
	in.rng.Shuffle(len(takeable), func(i, j int) { takeable[i], takeable[j] = takeable[j], takeable[i] })
	sort.SliceStable(takeable, func(i, j int) bool { return takeable[i].reason == takeOwn && takeable[j].reason != takeOwn })
	for _, t := range takeable {
		if t.reason == takeOwn {
			out.takes = append(out.takes, t)
			if !incoming[t.shardID] {
				mine++
			}
			continue
		}
		if mine < out.target {
			out.takes = append(out.takes, t)
			mine++
			continue
		}
		out.untaken++
	}

	// 5. Requests.
	most := 0
	for id := range in.live {
		most = max(most, eff[id])
	}
	othersBelow := func() bool {
		for id := range in.live {
			if eff[id] < out.floor {
				return true
			}
		}
		return false
	}
	if mine < out.floor || mine < out.target && most >= mine+2 {
		donors := map[string][]int{} // live owner -> indexes of leases it could hand over
		for i, l := range in.snap.Leases {
			if ok[i] && l.Owner != "" && l.Owner != in.me && in.live[l.Owner] && l.HandoffTo == "" {
				donors[l.Owner] = append(donors[l.Owner], i)
			}
		}
		for {
			best := ""
			for id, ls := range donors {
				if len(ls) > 0 && (best == "" || eff[id] > eff[best] || (eff[id] == eff[best] && id < best)) {
					best = id
				}
			}
			if best == "" {
				break
			}
			if mine >= out.floor && eff[best] >= mine+2 {
				// Asking for one more, every worker at floor sees the same
				// most loaded donor; it can agree to one or two of their
				// requests and refuses the rest, so the fleet converged
				// by about one move a pass (10,000 leases, 200 + 20
				// workers: minutes). Any donor two above helps as much:
				// pick one at random.
				var helpful []string
				for id, ls := range donors {
					if len(ls) > 0 && eff[id] >= mine+2 {
						helpful = append(helpful, id)
					}
				}
				sort.Strings(helpful)
				best = helpful[in.rng.IntN(len(helpful))]
			}
			if !(mine < out.floor && eff[best] > out.floor || mine < out.target && eff[best] >= mine+2 && !othersBelow()) {
				break
			}
			ls := donors[best]
			k := in.rng.IntN(len(ls))
			l := in.snap.Leases[ls[k]]
			ls[k] = ls[len(ls)-1]
			donors[best] = ls[:len(ls)-1]
			out.requests = append(out.requests, request{l.ShardID, l.Owner, l.Epoch})
			eff[best]--
			mine++
		}
		most = 0
		for id := range in.live {
			most = max(most, eff[id])
		}
	}
	out.settled = len(out.requests) == 0 && len(incoming) == 0 && mine >= out.floor
	// Look again now and then while the fleet is not balanced as seen
	// from here: a promise this view counts may be refused, and the
	// count it leaves is only seen by reading the table again.
	for id := range in.live {
		switch {
		case eff[id] > out.target:
			out.above++
		case eff[id] < out.floor:
			out.below++
		}
	}
	out.most, out.mine = most, mine
	unbalanced := mine < out.target && most >= mine+2 || out.above > 0 || out.below > 0
	out.lookAgain = out.settled && unbalanced
	return out
}

// parentsEnded reports whether every parent of l has reached SHARD_END. A
// parent with no lease is taken as ended: its lease was deleted once its
// children started, or the shard was trimmed before it had one.
func parentsEnded(l Lease, parents map[string]*Lease) bool {
	for _, p := range l.Parents {
		if pl := parents[p]; pl != nil && !pl.Ended() {
			return false
		}
	}
	return true
}

func ownerName(o string) string {
	if o == "" {
		return "nobody (released)"
	}
	return o
}
