package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/lease"
)

// LeaseConfig describes one lease benchmark run.
type LeaseConfig struct {
	Binary       string // the leasehold executable to run workers with
	Kinesis      string // endpoint URL
	DynamoDB     string // endpoint URL (each worker gets a proxy in front of it)
	Shards       int    // default 8
	Workers      int    // before scale-out; default 3
	Duration     time.Duration
	TakeInterval time.Duration
	Renew        time.Duration
	Margin       time.Duration
	Consuming    time.Duration // window for DynamoDB units while records flow; default 30s
	Rest         time.Duration // at-rest window for DynamoDB units; default 60s
	// Faults runs the fault scenarios (latency, black hole, 5xx and
	// throttling on one worker's lease table), each held for FaultHold
	// (default 3 × Duration).
	Faults    bool
	FaultHold time.Duration
	Progress  io.Writer // progress lines; may be nil
	// Env is added to every worker process's environment, after this
	// process's own: the local stack's region and test credentials when
	// the environment has none.
	Env []string
}

func (c *LeaseConfig) defaults() {
	if c.Shards == 0 {
		c.Shards = 8
	}
	if c.Workers == 0 {
		c.Workers = 3
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.TakeInterval == 0 {
		c.TakeInterval = time.Second
	}
	if c.Renew == 0 {
		c.Renew = 4 * time.Second
	}
	if c.Margin == 0 {
		c.Margin = 2 * time.Second
	}
	if c.Consuming == 0 {
		c.Consuming = 30 * time.Second
	}
	if c.Rest == 0 {
		c.Rest = 60 * time.Second
	}
	if c.FaultHold == 0 {
		c.FaultHold = 3 * c.Duration
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// LeaseResult holds the measured figures.
type LeaseResult struct {
	Shards, Workers        int
	Duration, TakeInterval time.Duration
	Renew                  time.Duration
	Failover               time.Duration // SIGKILL -> every orphaned shard read by a peer (max)
	FailoverTaken          time.Duration // SIGKILL -> every orphaned lease owned by a peer (max)
	Handoff                time.Duration // SIGTERM -> every released shard read by a peer (max)
	Convergence            time.Duration // start of worker N+1 -> balanced spread
	ScaleOutMoves          int           // planned moves for the scale-out; the minimum is ⌊shards/(workers+1)⌋
	Consuming, Rest        Cost
	PlannedDuplicates      int // stream records processed twice with no copy from the killed worker
	KillDuplicates         int // stream records processed twice, one copy from the killed worker
	Late                   int // records processed under an old epoch after the new one's first (promise 1: 0)
	Faults                 []FaultResult
}

// RunLeases runs the scenario. It creates (and deletes) its own stream and
// lease table, starts worker processes and stops them all before it
// returns.
func RunLeases(ctx context.Context, kc *kinesis.Client, db *dynamodb.Client, cfg LeaseConfig) (LeaseResult, error) {
	cfg.defaults()
	res := LeaseResult{Shards: cfg.Shards, Workers: cfg.Workers, Duration: cfg.Duration, TakeInterval: cfg.TakeInterval, Renew: cfg.Renew}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }

	f, stream, cleanup, err := newFleet(ctx, kc, db, cfg, "bench")
	if err != nil {
		return res, err
	}
	defer cleanup()
	store, err := lease.NewDynamoStore(db, f.table)
	if err != nil {
		return res, err
	}

	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	sent := startProduce(pctx, kc, stream)

	say("starting %d workers on %d shards", cfg.Workers, cfg.Shards)
	var ids []string
	for i := 1; i <= cfg.Workers; i++ {
		id := fmt.Sprintf("bench-w%d", i)
		ids = append(ids, id)
		if err := f.start(id); err != nil {
			return res, err
		}
	}
	if _, err := waitBalanced(ctx, store, ids, 60*time.Second); err != nil {
		return res, err
	}
	time.Sleep(2 * time.Second)

	// Scale-out N -> N+1.
	newID := fmt.Sprintf("bench-w%d", cfg.Workers+1)
	ids = append(ids, newID)
	say("scale-out: starting %s", newID)
	moves0 := f.labelCalls("hand over")
	t0 := time.Now()
	if err := f.start(newID); err != nil {
		return res, err
	}
	if _, err = waitBalanced(ctx, store, ids, 60*time.Second); err != nil {
		return res, err
	}
	res.Convergence = time.Since(t0)
	time.Sleep(2 * time.Second)
	res.ScaleOutMoves = int(f.labelCalls("hand over") - moves0)

	// While consuming: records flow, checkpoints are written.
	say("consuming: counting DynamoDB units for %s", cfg.Consuming)
	f.resetStats()
	if err := sleep(ctx, cfg.Consuming); err != nil {
		return res, err
	}
	res.Consuming = costOf(f.stats(), cfg.Consuming, cfg.Shards)

	// SIGKILL one worker.
	victim := ids[0]
	orphans, err := ownedBy(ctx, store, victim)
	if err != nil {
		return res, err
	}
	say("failover: SIGKILL %s holding %d shards", victim, len(orphans))
	t0 = time.Now()
	f.signal(victim, syscall.SIGKILL)
	ids = ids[1:]
	if res.FailoverTaken, res.Failover, err = waitRead(ctx, store, f, orphans, victim, t0, 3*cfg.Duration+30*time.Second); err != nil {
		return res, err
	}
	time.Sleep(2 * time.Second)

	// SIGTERM another: graceful handoff.
	leaving := ids[0]
	released, err := ownedBy(ctx, store, leaving)
	if err != nil {
		return res, err
	}
	say("handoff: SIGTERM %s holding %d shards", leaving, len(released))
	t0 = time.Now()
	f.signal(leaving, syscall.SIGTERM)
	if _, res.Handoff, err = waitRead(ctx, store, f, released, leaving, t0, 3*cfg.Duration+30*time.Second); err != nil {
		return res, err
	}
	f.wait(leaving)

	// At rest: no records.
	stopProducer()
	say("at rest: counting DynamoDB units for %s", cfg.Rest)
	time.Sleep(cfg.CheckpointSettle())
	f.resetStats()
	if err := sleep(ctx, cfg.Rest); err != nil {
		return res, err
	}
	res.Rest = costOf(f.stats(), cfg.Rest, cfg.Shards)
	res.PlannedDuplicates, res.KillDuplicates = f.duplicates(victim)
	if moves, err := Takeovers(f.lines()); err == nil {
		for _, m := range moves {
			res.Late += m.Late
		}
	}
	_ = sent
	f.stopAll()

	if cfg.Faults {
		if res.Faults, err = runFaults(ctx, kc, db, cfg); err != nil {
			return res, err
		}
	}
	return res, nil
}

// CheckpointSettle is how long to wait after the producer stops before
// counting: the last checkpoints of in-flight records land in it.
func (c LeaseConfig) CheckpointSettle() time.Duration { return 8 * time.Second }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// newFleet creates a stream of cfg.Shards shards and a worker-process
// fleet on a fresh lease table; cleanup stops the workers and deletes
// both.
func newFleet(ctx context.Context, kc *kinesis.Client, db *dynamodb.Client, cfg LeaseConfig, prefix string) (*procs, string, func(), error) {
	run := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)
	stream, table := run, run+"-leases"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return nil, "", nil, fmt.Errorf("create stream: %w", err)
	}
	dir, err := os.MkdirTemp("", "leasehold-bench")
	if err != nil {
		return nil, "", nil, err
	}
	f := &procs{cfg: cfg, dir: dir, stream: stream, table: table, byID: map[string]*proc{}}
	cleanup := func() {
		f.stopAll()
		for _, p := range f.proxies {
			p.Close()
		}
		_, _ = kc.DeleteStream(context.WithoutCancel(ctx), &kinesis.DeleteStreamInput{StreamName: &stream})
		_, _ = db.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: &table})
		if os.Getenv("LEASEHOLD_BENCH_KEEP_DIR") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(cfg.Progress, "kept %s\n", dir)
		}
	}
	if err := waitStream(ctx, kc, stream); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return f, stream, cleanup, nil
}

// startProduce writes a light, steady load of numbered records over random
// partition keys until ctx ends; the returned func tells how many were
// acknowledged (their data are 1..n).
func startProduce(ctx context.Context, kc *kinesis.Client, stream string) func() int64 {
	var n atomic.Int64
	go func() {
		for ctx.Err() == nil {
			var entries []types.PutRecordsRequestEntry
			base := n.Load()
			for i := range 40 {
				entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(strconv.FormatInt(base+int64(i)+1, 10)), PartitionKey: aws.String(strconv.Itoa(rand.IntN(1 << 30)))})
			}
			// Only whole batches count, so the acknowledged data are 1..n.
			if out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries}); err == nil && aws.ToInt32(out.FailedRecordCount) == 0 {
				n.Add(int64(len(entries)))
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return n.Load
}

func waitStream(ctx context.Context, kc *kinesis.Client, stream string) error {
	for range 600 {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &stream})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("stream %s not ACTIVE", stream)
}
