package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
)

// FaultResult is one fault on one worker's lease table, measured from
// what the sinks received.
type FaultResult struct {
	Name string
	Hold time.Duration
	// Held is how many shards the faulted worker held when the fault
	// began; Moved how many of them another worker processed before it
	// ended; Takeover the time from the fault's start to the last of
	// those moves' first record (0 when none moved).
	Held, Moved int
	Takeover    time.Duration
	// Late counts records processed under an old lease epoch after the
	// new one's first record, Overlap the longest such lateness (promise
	// 1: both 0).
	Late    int
	Overlap time.Duration
	// Gap is the shortest time between the faulted worker's last record
	// of a shard and the next owner's first.
	Gap time.Duration
}

// FaultSet names the fault scenarios the benchmark runs.
var FaultSet = []struct {
	Name   string
	Faults faultproxy.DynamoFaults
}{
	{"latency +1.5 s on every call", faultproxy.DynamoFaults{Latency: 1500 * time.Millisecond}},
	{"black hole (accepted, never answered)", faultproxy.DynamoFaults{BlackHole: true}},
	{"50% 5xx + 30% throttling", faultproxy.DynamoFaults{ServerErrorRate: 0.5, ThrottleRate: 0.3}},
}

// runFaults runs a fleet of worker processes and faults the lease table
// of the worker holding the most shards, one fault after another, each
// for cfg.FaultHold, with time to recover in between.
func runFaults(ctx context.Context, kc *kinesis.Client, db *dynamodb.Client, cfg LeaseConfig) ([]FaultResult, error) {
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	f, stream, cleanup, err := newFleet(ctx, kc, db, cfg, "faults")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	store, err := lease.NewDynamoStore(db, f.table)
	if err != nil {
		return nil, err
	}
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	sent := startProduce(pctx, kc, stream)
	var ids []string
	for i := 1; i <= cfg.Workers; i++ {
		id := fmt.Sprintf("fault-w%d", i)
		ids = append(ids, id)
		if err := f.start(id); err != nil {
			return nil, err
		}
	}
	type window struct {
		victim string
		held   map[string]bool
		from   time.Time
		to     time.Time
	}
	var windows []window
	for _, fs := range FaultSet {
		if _, err := waitBalanced(ctx, store, ids, 2*time.Minute); err != nil {
			return nil, err
		}
		time.Sleep(3 * time.Second)
		victim, held := "", map[string]bool{}
		for _, id := range ids {
			if h, err := ownedBy(ctx, store, id); err == nil && len(h) > len(held) {
				victim, held = id, h
			}
		}
		say("fault: %s on %s's lease table for %s", fs.Name, victim, cfg.FaultHold)
		w := window{victim: victim, held: held, from: time.Now()}
		f.proxies[victim].Set(fs.Faults)
		if err := sleep(ctx, cfg.FaultHold); err != nil {
			return nil, err
		}
		f.proxies[victim].Set(faultproxy.DynamoFaults{})
		w.to = time.Now()
		windows = append(windows, w)
		if err := sleep(ctx, 3*cfg.Duration/2); err != nil {
			return nil, err
		}
	}
	stopProducer()
	n := sent()
	// Let every record be processed, then stop the fleet.
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if lostRecords(f.lines(), n) == 0 {
			break
		}
	}
	f.stopAll()
	lines := f.lines()
	if lost := lostRecords(lines, n); lost > 0 {
		return nil, fmt.Errorf("fault scenarios: %d of %d records lost", lost, n)
	}
	moves, err := Takeovers(lines)
	if err != nil {
		return nil, err
	}
	var out []FaultResult
	for i, w := range windows {
		r := FaultResult{Name: FaultSet[i].Name, Hold: cfg.FaultHold, Held: len(w.held), Gap: -1}
		end := w.to.Add(cfg.Duration)
		for _, m := range moves {
			if m.FirstAt.Before(w.from) || m.FirstAt.After(end) {
				continue
			}
			r.Late += m.Late
			r.Overlap = max(r.Overlap, m.Overlap)
			if m.FromID == w.victim && m.ToID != w.victim && w.held[m.Shard] && m.FirstAt.Before(w.to) {
				r.Moved++
				r.Takeover = max(r.Takeover, m.FirstAt.Sub(w.from))
				if r.Gap < 0 || m.Gap < r.Gap {
					r.Gap = m.Gap
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// lostRecords counts the numbers 1..n no sink line carries.
func lostRecords(lines []filesink.Line, n int64) int64 {
	seen := make(map[int64]bool, n)
	for _, l := range lines {
		if v, err := strconv.ParseInt(l.Data, 10, 64); err == nil {
			seen[v] = true
		}
	}
	var lost int64
	for i := int64(1); i <= n; i++ {
		if !seen[i] {
			lost++
		}
	}
	return lost
}
