package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
)

// LeaseConfig describes one lease benchmark run.
type LeaseConfig struct {
	Binary       string // the leasehold executable to run workers with
	Kinesis      string // endpoint URL
	DynamoDB     string // endpoint URL (the proxy goes in front of it)
	Shards       int    // default 8
	Workers      int    // before scale-out; default 3
	Duration     time.Duration
	TakeInterval time.Duration
	Renew        time.Duration
	Rest         time.Duration // at-rest window for DynamoDB counts; default 60s
	Progress     io.Writer     // progress lines; may be nil
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
	if c.Rest == 0 {
		c.Rest = 60 * time.Second
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
	RestWindow             time.Duration
	RestWrites, RestReads  int64
	WritesPerShardHour     float64
	ReadsPerShardHour      float64
	RestOps                map[string]int64
	PlannedDuplicates      int // stream records processed twice with no copy from the killed worker
	KillDuplicates         int // stream records processed twice, one copy from the killed worker
}

// RunLeases runs the scenario. It creates (and deletes) its own stream and
// lease table, starts worker processes and stops them all before it
// returns.
func RunLeases(ctx context.Context, kc *kinesis.Client, db *dynamodb.Client, cfg LeaseConfig) (LeaseResult, error) {
	cfg.defaults()
	res := LeaseResult{Shards: cfg.Shards, Workers: cfg.Workers, Duration: cfg.Duration, TakeInterval: cfg.TakeInterval, Renew: cfg.Renew}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }

	proxy, err := startDDBProxy(cfg.DynamoDB)
	if err != nil {
		return res, err
	}
	defer proxy.Close()

	run := fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e9)
	stream, table := run, run+"-leases"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return res, fmt.Errorf("create stream: %w", err)
	}
	defer kc.DeleteStream(context.WithoutCancel(ctx), &kinesis.DeleteStreamInput{StreamName: &stream})
	defer db.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: &table})
	if err := waitStream(ctx, kc, stream); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "leasehold-bench")
	if err != nil {
		return res, err
	}
	if os.Getenv("LEASEHOLD_BENCH_KEEP_DIR") == "" {
		defer os.RemoveAll(dir)
	} else {
		say("keeping %s", dir)
	}

	f := &procs{cfg: cfg, dir: dir, stream: stream, table: table, ddb: proxy.URL(), byID: map[string]*exec.Cmd{}}
	defer f.stopAll()
	store := lease.NewDynamoStore(db, table)

	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	go produce(pctx, kc, stream)

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

	// Scale-out N -> N+1.
	newID := fmt.Sprintf("bench-w%d", cfg.Workers+1)
	ids = append(ids, newID)
	say("scale-out: starting %s", newID)
	t0 := time.Now()
	if err := f.start(newID); err != nil {
		return res, err
	}
	if res.Convergence, err = waitBalanced(ctx, store, ids, 60*time.Second); err != nil {
		return res, err
	}
	res.Convergence = time.Since(t0)
	time.Sleep(2 * time.Second)

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

	// At rest: no records, count DynamoDB calls.
	stopProducer()
	say("at rest: counting DynamoDB calls for %s", cfg.Rest)
	time.Sleep(cfg.CheckpointSettle())
	proxy.snapshot()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(cfg.Rest):
	}
	res.RestOps = proxy.snapshot()
	for op, n := range res.RestOps {
		if isWrite(op) {
			res.RestWrites += n
		} else {
			res.RestReads += n
		}
	}
	res.RestWindow = cfg.Rest
	shardHours := float64(cfg.Shards) * cfg.Rest.Hours()
	res.WritesPerShardHour = float64(res.RestWrites) / shardHours
	res.ReadsPerShardHour = float64(res.RestReads) / shardHours
	res.PlannedDuplicates, res.KillDuplicates = f.duplicates(victim)
	return res, nil
}

// CheckpointSettle is how long to wait after the producer stops before
// counting: the last checkpoints of in-flight records land in it.
func (c LeaseConfig) CheckpointSettle() time.Duration { return 8 * time.Second }

// procs runs worker processes of the real binary.
type procs struct {
	cfg                LeaseConfig
	dir, stream, table string
	ddb                string
	byID               map[string]*exec.Cmd
}

func (f *procs) start(id string) error {
	cmd := exec.Command(f.cfg.Binary, "worker")
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+f.cfg.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+f.ddb,
		"LEASEHOLD_STREAM_NAME="+f.stream, "LEASEHOLD_LEASE_TABLE="+f.table, "LEASEHOLD_WORKER_ID="+id,
		"LEASEHOLD_WORKER_FILE_SINK="+filepath.Join(f.dir, id+".ndjson"), "LEASEHOLD_LOG_FORMAT=json", "LEASEHOLD_LOG_LEVEL=info",
		"LEASEHOLD_LEASE_DURATION="+f.cfg.Duration.String(), "LEASEHOLD_LEASE_TAKE_INTERVAL="+f.cfg.TakeInterval.String(),
		"LEASEHOLD_LEASE_RENEW_INTERVAL="+f.cfg.Renew.String(), "LEASEHOLD_WORKER_CHECKPOINT_INTERVAL=1s", "LEASEHOLD_WORKER_IDLE_TIME=200ms", "LEASEHOLD_WORKER_MAX_READ_RATE=5", "LEASEHOLD_WORKER_METRICS_ADDR=127.0.0.1:0",
	)
	if os.Getenv("AWS_REGION") == "" {
		cmd.Env = append(cmd.Env, "AWS_REGION=us-east-1")
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	}
	logf, err := os.Create(filepath.Join(f.dir, id+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker %s: %w", id, err)
	}
	f.byID[id] = cmd
	return nil
}

func (f *procs) signal(id string, sig syscall.Signal) {
	if c := f.byID[id]; c != nil {
		_ = c.Process.Signal(sig)
		if sig == syscall.SIGKILL {
			f.wait(id)
		}
	}
}

func (f *procs) wait(id string) {
	if c := f.byID[id]; c != nil {
		_ = c.Wait()
		delete(f.byID, id)
	}
}

func (f *procs) stopAll() {
	for id, c := range f.byID {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
		delete(f.byID, id)
	}
}

// readWatch finds, per shard, the earliest time after t0 that a worker
// other than `not` processed one of its records. It tails the sink files:
// each poll reads only what was appended since the last, so watching does
// not load the machine whose timings it measures.
type readWatch struct {
	dir    string
	shards map[string]bool
	not    string
	t0     time.Time
	offset map[string]int64     // file -> bytes consumed (whole lines only)
	first  map[string]time.Time // shard -> first read after t0
}

func (f *procs) watchReads(shards map[string]bool, not string, t0 time.Time) *readWatch {
	return &readWatch{dir: f.dir, shards: shards, not: not, t0: t0, offset: map[string]int64{}, first: map[string]time.Time{}}
}

// poll reads what the files gained and returns the first reads so far.
func (w *readWatch) poll() map[string]time.Time {
	files, _ := filepath.Glob(filepath.Join(w.dir, "*.ndjson"))
	for _, path := range files {
		fh, err := os.Open(path)
		if err != nil {
			continue
		}
		if _, err := fh.Seek(w.offset[path], io.SeekStart); err == nil {
			r := bufio.NewReaderSize(fh, 1<<16)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					break // a partial last line is read again next time
				}
				w.offset[path] += int64(len(line))
				var l filesink.Line
				if json.Unmarshal(line, &l) != nil || l.WorkerID == w.not || !w.shards[l.ShardID] || l.ProcessedAt.Before(w.t0) {
					continue
				}
				if cur, ok := w.first[l.ShardID]; !ok || l.ProcessedAt.Before(cur) {
					w.first[l.ShardID] = l.ProcessedAt
				}
			}
		}
		fh.Close()
	}
	return w.first
}

// duplicates counts stream records processed more than once, split into
// those with a copy from the killed worker (expected: its in-flight batch)
// and those without (planned moves: should be 0).
func (f *procs) duplicates(killed string) (planned, fromKill int) {
	seen := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(f.dir, "*.ndjson"))
	for _, path := range files {
		forEachLine(path, func(l filesink.Line) {
			k := l.ShardID + "/" + l.SequenceNumber + "/" + strconv.FormatInt(l.SubSequenceNumber, 10)
			seen[k] = append(seen[k], l.WorkerID)
		})
	}
	for _, ws := range seen {
		if len(ws) < 2 {
			continue
		}
		killedCopy := false
		for _, w := range ws {
			killedCopy = killedCopy || w == killed
		}
		if killedCopy {
			fromKill++
		} else {
			planned++
		}
	}
	return planned, fromKill
}

func forEachLine(path string, fn func(filesink.Line)) {
	fh, err := os.Open(path)
	if err != nil {
		return
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l filesink.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			fn(l)
		}
	}
}

// waitRead polls until every shard in `shards` is owned by another worker
// and has been read by it; it returns the max time to ownership and to the
// first record read.
func waitRead(ctx context.Context, store lease.Store, f *procs, shards map[string]bool, from string, t0 time.Time, limit time.Duration) (taken, read time.Duration, err error) {
	takenAt := map[string]time.Duration{}
	watch := f.watchReads(shards, from, t0)
	deadline := t0.Add(limit)
	for time.Now().Before(deadline) {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, l := range snap.Leases {
			if shards[l.ShardID] && l.Owner != "" && l.Owner != from {
				if _, ok := takenAt[l.ShardID]; !ok {
					takenAt[l.ShardID] = time.Since(t0)
				}
			}
		}
		reads := watch.poll()
		if len(takenAt) == len(shards) && len(reads) == len(shards) {
			for _, d := range takenAt {
				taken = max(taken, d)
			}
			for _, at := range reads {
				read = max(read, at.Sub(t0))
			}
			return taken, read, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, 0, fmt.Errorf("shards %v not read elsewhere within %s", keys(shards), limit)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ownedBy(ctx context.Context, store lease.Store, id string) (map[string]bool, error) {
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, l := range snap.Leases {
		if l.Owner == id && !l.Ended() {
			out[l.ShardID] = true
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("worker %s holds no shard", id)
	}
	return out, nil
}

// waitBalanced polls until every lease is owned by one of ids and the
// spread is within one; it returns how long that took.
func waitBalanced(ctx context.Context, store lease.Store, ids []string, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	var lastErr error
	for time.Since(t0) < limit {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			lastErr = err // the workers may not have created the table yet
			time.Sleep(100 * time.Millisecond)
			continue
		}
		count := map[string]int{}
		ok := len(snap.Leases) > 0
		for _, l := range snap.Leases {
			if l.Ended() {
				continue
			}
			if l.Owner == "" {
				ok = false
			}
			count[l.Owner]++
		}
		lo, hi := 1<<30, 0
		for _, id := range ids {
			lo, hi = min(lo, count[id]), max(hi, count[id])
		}
		if ok && hi-lo <= 1 {
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("leases never balanced within %s (last error: %v)", limit, lastErr)
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

// produce writes a light, steady load over random partition keys until ctx
// ends, so every shard has records to read.
func produce(ctx context.Context, kc *kinesis.Client, stream string) {
	n := 0
	for ctx.Err() == nil {
		var entries []types.PutRecordsRequestEntry
		for range 40 {
			n++
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(strconv.Itoa(n)), PartitionKey: aws.String(strconv.Itoa(rand.IntN(1 << 30)))})
		}
		_, _ = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PrintLeases renders the result as a Markdown table with each target.
func PrintLeases(w io.Writer, r LeaseResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(tw, "| figure\t measured\t target\t\n")
	fmt.Fprintf(tw, "|---\t---\t---\t\n")
	fmt.Fprintf(tw, "| crash failover: SIGKILL → every orphaned shard read by a peer (max)\t %.1f s\t ≤ lease duration + 2 s = %.0f s\t\n", r.Failover.Seconds(), (r.Duration + 2*time.Second).Seconds())
	fmt.Fprintf(tw, "| … of which: SIGKILL → every orphaned lease taken (max)\t %.1f s\t \t\n", r.FailoverTaken.Seconds())
	fmt.Fprintf(tw, "| graceful handoff: SIGTERM → every released shard read by a peer (max)\t %.2f s\t < 2 s\t\n", r.Handoff.Seconds())
	fmt.Fprintf(tw, "| scale-out %d → %d workers, %d shards: start → balanced\t %.1f s (%.1f take intervals)\t ≤ 2 take intervals\t\n", r.Workers, r.Workers+1, r.Shards, r.Convergence.Seconds(), r.Convergence.Seconds()/r.TakeInterval.Seconds())
	fmt.Fprintf(tw, "| duplicates from planned moves (scale-out, SIGTERM)\t %d\t 0\t\n", r.PlannedDuplicates)
	fmt.Fprintf(tw, "| duplicates after SIGKILL (records it processed but had not checkpointed)\t %d\t within one checkpoint interval\t\n", r.KillDuplicates)
	fmt.Fprintf(tw, "| DynamoDB writes per shard-hour at rest (%d shards, %d workers)\t %.0f\t ≤ 120\t\n", r.Shards, r.Workers-1, r.WritesPerShardHour)
	fmt.Fprintf(tw, "| DynamoDB reads per shard-hour at rest\t %.0f\t (reported)\t\n", r.ReadsPerShardHour)
	tw.Flush()
	var ops []string
	for op, n := range r.RestOps {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	fmt.Fprintf(w, "\nAt rest for %s: %v. Settings: lease duration %s, renew %s, take interval %s.\n", r.RestWindow, ops, r.Duration, r.Renew, r.TakeInterval)
}
