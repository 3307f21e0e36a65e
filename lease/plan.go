package lease

import (
	"math/rand/v2"
	"sort"
	"time"
)

// planInput is everything one coordination pass decides from.
type planInput struct {
	me       string
	now      time.Time
	snap     Snapshot
	live     *liveness
	held     map[string]int64 // shard -> epoch this process holds and processes
	stopping bool             // shutting down: take nothing, request nothing
	rng      *rand.Rand
}

type take struct {
	shardID string
	epoch   int64
	reason  string
}

type request struct {
	shardID string
	owner   string
	epoch   int64
}

// planOutput is what the pass should do.
type planOutput struct {
	lost     map[string]string // shard -> reason: held here, but the table says otherwise
	handoffs map[string]string // shard -> requester: hand over after the in-flight batch
	cancels  []string          // shards whose pending request names a requester that is not alive
	takes    []take
	requests []request
	target   int // balanced number of leases per live worker
}

// plan decides one pass. It is a pure function of its input so that the
// lease logic can be tested with an injected clock and a made-up table.
//
// Rules, in order:
//  1. A lease held here whose owner or epoch in the table differs is lost.
//  2. A held lease with a handoff request from a live worker is handed off;
//     a request from a worker that is not alive is cancelled.
//  3. Processable leases are the ones not ended whose parents have all
//     ended (or are gone from the table). target = ceil(processable / live
//     workers).
//  4. Take: leases owned by this worker id but not held here (a previous
//     incarnation, or dropped after a renewal failure) are always taken
//     back; unowned leases and leases of expired owners are taken up to
//     target, in random order so that workers racing for the same orphans
//     mostly pick different ones.
//  5. Balance: while some live worker holds more than target, or at least
//     two more than this one, ask it to hand one lease over (cooperative:
//     the owner checkpoints first, so the move produces no duplicates).
func plan(in planInput) planOutput {
	out := planOutput{lost: map[string]string{}, handoffs: map[string]string{}}
	stopping := map[string]bool{}
	for _, w := range in.snap.Workers {
		if w.Stopping {
			stopping[w.ID] = true
		}
	}
	byShard := make(map[string]Lease, len(in.snap.Leases))
	for _, l := range in.snap.Leases {
		byShard[l.ShardID] = l
	}

	for shard, epoch := range in.held {
		l, ok := byShard[shard]
		switch {
		case !ok:
			out.lost[shard] = "lease deleted"
		case l.Owner != in.me:
			out.lost[shard] = "taken by " + ownerName(l.Owner)
		case l.Epoch != epoch:
			out.lost[shard] = "epoch moved"
		case l.HandoffTo != "" && l.HandoffTo != in.me:
			if in.live.alive(l.HandoffTo, in.now) && !stopping[l.HandoffTo] {
				out.handoffs[shard] = l.HandoffTo
			} else {
				out.cancels = append(out.cancels, shard)
			}
		}
	}

	processable := 0
	counts := map[string]int{} // live owner -> processable leases held
	incoming := 0              // requests of ours still pending
	var takeable []take
	for _, l := range in.snap.Leases {
		if l.Ended() || !parentsEnded(l, byShard) {
			continue
		}
		processable++
		if l.HandoffTo == in.me {
			incoming++
		}
		_, mine := in.held[l.ShardID]
		switch {
		case l.Owner == in.me && !mine:
			takeable = append(takeable, take{l.ShardID, l.Epoch, "own lease not held here"})
		case l.Owner == "":
			takeable = append(takeable, take{l.ShardID, l.Epoch, "unowned"})
		case l.Owner != in.me && in.live.expired(l.Owner, in.now):
			takeable = append(takeable, take{l.ShardID, l.Epoch, "owner " + l.Owner + " expired"})
		case l.Owner == in.me || in.live.alive(l.Owner, in.now):
			counts[l.Owner]++
		}
	}

	workers := 1 // this one
	for _, w := range in.snap.Workers {
		if w.ID != in.me && !w.Stopping && in.live.alive(w.ID, in.now) {
			workers++
		}
	}
	if in.stopping {
		workers = max(workers-1, 1)
	}
	out.target = (processable + workers - 1) / workers
	if in.stopping {
		return out
	}

	mine := len(in.held) - len(out.lost)
	in.rng.Shuffle(len(takeable), func(i, j int) { takeable[i], takeable[j] = takeable[j], takeable[i] })
	sort.SliceStable(takeable, func(i, j int) bool { return ownFirst(takeable[i]) && !ownFirst(takeable[j]) })
	for _, t := range takeable {
		if ownFirst(t) || mine < out.target {
			out.takes = append(out.takes, t)
			mine++
		}
	}

	mine += incoming
	donors := map[string][]Lease{}
	for _, l := range in.snap.Leases {
		if l.Owner != "" && l.Owner != in.me && !stopping[l.Owner] && l.HandoffTo == "" && !l.Ended() && counts[l.Owner] > 0 && parentsEnded(l, byShard) {
			donors[l.Owner] = append(donors[l.Owner], l)
		}
	}
	for {
		best := ""
		for id, ls := range donors {
			if len(ls) > 0 && (best == "" || counts[id] > counts[best] || (counts[id] == counts[best] && id < best)) {
				best = id
			}
		}
		if best == "" || !(counts[best] > out.target && mine < out.target || counts[best]-mine >= 2) {
			break
		}
		ls := donors[best]
		i := in.rng.IntN(len(ls))
		l := ls[i]
		donors[best] = append(ls[:i], ls[i+1:]...)
		out.requests = append(out.requests, request{l.ShardID, l.Owner, l.Epoch})
		counts[best]--
		mine++
	}
	return out
}

func ownFirst(t take) bool { return t.reason == "own lease not held here" }

// parentsEnded reports whether every parent of l has reached SHARD_END. A
// parent with no lease is taken as ended: shard sync creates a lease for
// every shard the stream lists, so a missing parent was trimmed away.
func parentsEnded(l Lease, byShard map[string]Lease) bool {
	for _, p := range l.Parents {
		if pl, ok := byShard[p]; ok && !pl.Ended() {
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
