package lease

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/checkpoint"
)

// encodeLease is the lease item as DynamoDB stores it.
func encodeLease(l Lease) map[string]types.AttributeValue {
	item := key(leaseItem, l.ShardID)
	maps.Copy(item, map[string]types.AttributeValue{
		attrShard:   sv(l.ShardID),
		attrEpoch:   num(l.Epoch),
		attrSeq:     sv(l.Checkpoint.Position.Sequence),
		attrSub:     num(l.Checkpoint.Position.Sub),
		attrLag:     num(l.Checkpoint.MillisBehind),
		attrUpdated: sv(l.UpdatedAt.UTC().Format(time.RFC3339Nano)),
	})
	if l.Owner != "" {
		item[attrOwner] = sv(l.Owner)
	}
	if l.HandoffTo != "" {
		item[attrHandoff] = sv(l.HandoffTo)
	}
	if len(l.Parents) > 0 {
		ps := make([]types.AttributeValue, len(l.Parents))
		for i, p := range l.Parents {
			ps[i] = sv(p)
		}
		item[attrParents] = &types.AttributeValueMemberL{Value: ps}
	}
	if len(l.Checkpoint.Sinks) > 0 {
		item[attrSinks] = sinksAttr(l.Checkpoint.Sinks)
	}
	return item
}

func decodeLease(it map[string]types.AttributeValue) Lease {
	l := Lease{
		ShardID:   str(it[attrShard]),
		Owner:     str(it[attrOwner]),
		Epoch:     numOf(it[attrEpoch]),
		HandoffTo: str(it[attrHandoff]),
		Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{
			Sequence: str(it[attrSeq]), Sub: numOf(it[attrSub]),
		}, MillisBehind: numOf(it[attrLag])},
	}
	if l.ShardID == "" {
		l.ShardID = strings.TrimPrefix(str(it[attrPK]), shardPrefix)
	}
	l.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str(it[attrUpdated]))
	if ps, ok := it[attrParents].(*types.AttributeValueMemberL); ok {
		for _, p := range ps.Value {
			l.Parents = append(l.Parents, str(p))
		}
	}
	if m, ok := it[attrSinks].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 {
		l.Checkpoint.Sinks = make(map[string]checkpoint.Position, len(m.Value))
		for k, v := range m.Value {
			if p, err := checkpoint.Parse(str(v)); err == nil {
				l.Checkpoint.Sinks[k] = p
			}
		}
	}
	return l
}

// encodeWorker is the worker item as DynamoDB stores it.
func encodeWorker(w Worker) map[string]types.AttributeValue {
	item := key(workerItem, w.ID)
	maps.Copy(item, map[string]types.AttributeValue{
		attrWorker:    sv(w.Name),
		attrHeartbeat: num(w.Heartbeat),
		attrHeld:      num(int64(w.Held)),
		attrStopping:  &types.AttributeValueMemberBOOL{Value: w.Stopping},
		attrUpdated:   sv(w.UpdatedAt.UTC().Format(time.RFC3339Nano)),
	})
	if w.Dead {
		item[attrDead] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if w.Inbox != 0 {
		item[attrInbox] = num(w.Inbox)
	}
	return item
}

func decodeWorker(it map[string]types.AttributeValue) Worker {
	w := Worker{
		ID:        strings.TrimPrefix(str(it[attrSK]), workerPrefix),
		Name:      str(it[attrWorker]),
		Heartbeat: numOf(it[attrHeartbeat]),
		Held:      int(numOf(it[attrHeld])),
		Inbox:     numOf(it[attrInbox]),
	}
	if b, ok := it[attrStopping].(*types.AttributeValueMemberBOOL); ok {
		w.Stopping = b.Value
	}
	if b, ok := it[attrDead].(*types.AttributeValueMemberBOOL); ok {
		w.Dead = b.Value
	}
	if w.Name == "" {
		w.Name = WorkerName(w.ID)
	}
	w.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str(it[attrUpdated]))
	return w
}

// LeaseItemBytes is the size DynamoDB bills for l's item (attribute names
// plus values, by DynamoDB's item size rules). In-memory stores use it to
// count capacity as DynamoDB would.
func LeaseItemBytes(l Lease) int { return itemBytes(encodeLease(l)) }

// WorkerItemBytes is the size DynamoDB bills for w's item.
func WorkerItemBytes(w Worker) int { return itemBytes(encodeWorker(w)) }

// GenerationItemBytes is the size DynamoDB bills for the fleet item.
func GenerationItemBytes(gen int64) int {
	return itemBytes(encodeGeneration(gen))
}

func encodeGeneration(gen int64) map[string]types.AttributeValue {
	item := key(generationItem, "")
	item[attrGeneration] = num(gen)
	return item
}

func itemBytes(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueBytes(v)
	}
	return n
}

// valueBytes follows DynamoDB's item size rules: strings by UTF-8 length,
// numbers about one byte per two significant digits plus one, booleans
// one byte, lists and maps three bytes plus one per element plus the
// elements.
func valueBytes(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		digits := strings.TrimLeft(strings.TrimPrefix(v.Value, "-"), "0")
		return (len(digits)+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueBytes(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueBytes(e)
		}
		return n
	}
	return 0
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// itemKind is one of the three kinds of item the table holds.
type itemKind int

const (
	leaseItem      itemKind = iota // pk "shard#<id>", sk "lease"
	workerItem                     // pk "fleet", sk "worker#<identity>"
	generationItem                 // pk "fleet", sk "generation"
)

// keyParts is where each item lives. Worker items and the generation share
// the fleet partition, so one Query reads them all (billed by their summed
// size, not per item); every lease has a partition of its own.
func keyParts(kind itemKind, id string) (pk, sk string) {
	switch kind {
	case leaseItem:
		return shardPrefix + id, leaseSort
	case workerItem:
		return fleetPartition, workerPrefix + id
	default:
		return fleetPartition, generationSort
	}
}

// key is the primary key of an item: every key the store sends is built
// here.
func key(kind itemKind, id string) map[string]types.AttributeValue {
	pk, sk := keyParts(kind, id)
	return map[string]types.AttributeValue{attrPK: sv(pk), attrSK: sv(sk)}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numOf(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		x, _ := strconv.ParseInt(n.Value, 10, 64)
		return x
	}
	return 0
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func sinksAttr(m map[string]checkpoint.Position) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, p := range m {
		out[k] = sv(p.String())
	}
	return &types.AttributeValueMemberM{Value: out}
}

// eventualUnits is what an eventually consistent read of bytes costs, as
// DynamoDB bills it: half a unit per 4 KB started, at least half a unit.
func eventualUnits(bytes int) float64 {
	return 0.5 * float64(max((bytes+4095)/4096, 1))
}

// PollRead is how a poll reads the generation and the worker items it
// asks for (the caller's own identity first, then the ring successors it
// watches, in ring order). Worker items and the generation share one
// partition, sorted by identity after the generation. DynamoDB bills a
// BatchGetItem per item, each rounded up to 4 KB (half a read unit
// eventually consistent), and a Query by the summed size of what it
// returns, rounded up to 4 KB once; a poll takes the cheapest of:
//
//   - Whole: one query of the whole fleet partition — half a unit while it
//     is under 4 KB (about 40 workers);
//   - Ranges: a query of the identities from its own to its last ring
//     successor (the ring is identity order, so nothing else lies between
//     but workers that joined since the last scan), with the generation
//     in the batch; or, when the ring wraps past the last identity, one
//     query from the generation to the last successor and one from its
//     own identity to the end — 1 unit either way;
//   - neither: every item by BatchGetItem, half a unit each.
type PollRead struct {
	Whole bool
	// Ranges are inclusive identity ranges to query; From "" starts at
	// the generation item (which the query then returns), To "" runs to
	// the end of the partition.
	Ranges []IdentityRange
	// Generation and Workers name what the batch read must fetch.
	Generation bool
	Workers    []string
	Units      float64 // what reading the fleet's items this way costs
}

// IdentityRange is an inclusive range of worker identities; see PollRead.
type IdentityRange struct{ From, To string }

// Contains reports whether id lies in the range.
func (r IdentityRange) Contains(id string) bool {
	return (r.From == "" || id >= r.From) && (r.To == "" || id <= r.To)
}

// PlanPoll chooses how a poll reads the generation and workers (own
// identity first, then its ring successors in order), from the fleet
// partition's size at the last read of all of it (0: unknown).
func PlanPoll(fleetBytes int, workers []string) PollRead {
	var uniq []string
	seen := map[string]bool{}
	for _, w := range workers {
		if !seen[w] {
			seen[w] = true
			uniq = append(uniq, w)
		}
	}
	batch := PollRead{Generation: true, Workers: uniq, Units: 0.5 * float64(1+len(uniq))}
	best := batch
	if len(uniq) >= 2 {
		me, last := uniq[0], uniq[len(uniq)-1]
		var r PollRead
		if last > me {
			r = PollRead{Ranges: []IdentityRange{{me, last}}, Generation: true, Units: 1}
		} else {
			r = PollRead{Ranges: []IdentityRange{{"", last}, {me, ""}}, Units: 1}
		}
		covered := true
		for _, w := range uniq {
			covered = covered && slices.ContainsFunc(r.Ranges, func(ir IdentityRange) bool { return ir.Contains(w) })
		}
		if covered && r.Units < best.Units {
			best = r
		}
	}
	if fleetBytes > 0 && eventualUnits(fleetBytes) < best.Units {
		best = PollRead{Whole: true, Units: eventualUnits(fleetBytes)}
	}
	return best
}

// PollUnits is what a poll costs in read units: the fleet's items (as
// PlanPoll reads them) and one half unit per lease asked for.
func PollUnits(fleetBytes int, workers []string, shards int) float64 {
	return PlanPoll(fleetBytes, workers).Units + 0.5*float64(shards)
}
