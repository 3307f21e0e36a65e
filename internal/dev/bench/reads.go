package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
)

// ReadsConfig describes one run of the read-path benchmark: generated
// CloudFront lines at a steady rate into a fresh stream, read by worker
// processes that append every record to a file (worker.file_sink), with
// a proxy in front of Kinesis that enforces AWS's per-shard read limits
// and counts every GetRecords call by shard. It measures what reading
// costs, not what sinks cost.
type ReadsConfig struct {
	Binary   string // the leasehold executable
	Kinesis  string // endpoint URLs
	DynamoDB string
	Workers  int           // consumer processes; default 3
	Shards   int           // default 8
	Rate     int           // records per second offered; default 200
	Duration time.Duration // steady production; default 90s; negative: none (with Backlog, the catch-up alone)
	// Warmup is the start of the steady production left out of the
	// steady window (leases settle, caches fill). Default 20s.
	Warmup time.Duration
	// Rest is how long the consumers' CPU and wake-ups are measured with
	// nothing to read, once every shard is read and before the steady
	// production starts. Default 15s; negative: not measured.
	Rest time.Duration
	// Backlog, when set, is how many seconds' worth of records at Rate
	// are put before any consumer starts, as fast as the emulator takes
	// them; the run then measures the catch-up before the steady part.
	Backlog time.Duration
	// Consumer, when set, is a command run instead of leasehold workers
	// (argv, executed directly: a shell wrapper would hide the consumer's
	// CPU time). Each process gets AWS_ENDPOINT_URL_KINESIS (the proxy),
	// AWS_ENDPOINT_URL_DYNAMODB, LEASEHOLD_BENCH_STREAM,
	// LEASEHOLD_BENCH_APP (a fresh name for its lease table),
	// LEASEHOLD_BENCH_WORKER_ID and LEASEHOLD_BENCH_OUT, a file it must
	// append one JSON line per record to, with at least shard_id,
	// sequence_number and processed_at (RFC 3339 with fractions), as the
	// file sink writes.
	Consumer []string
	// Limits are enforced at the Kinesis proxy; default AWS's (5 calls
	// and 2 MiB per second per shard).
	Limits *faultproxy.KinesisLimits
	// ProfileDir, when set, receives a CPU profile of each leasehold
	// worker over the steady window (worker.pprof).
	ProfileDir string
	// Against names the Kinesis the run reads from, for the table
	// (default "the local Kinesis emulator").
	Against  string
	Progress io.Writer
	// Env is added to every worker process's environment, after this
	// process's own: the local stack's region and test credentials when
	// the environment has none.
	Env []string
}

func (c *ReadsConfig) defaults() {
	if c.Workers == 0 {
		c.Workers = 3
	}
	if c.Shards == 0 {
		c.Shards = 8
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 90 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 20 * time.Second
	}
	if c.Rest == 0 {
		c.Rest = 15 * time.Second
	}
	if c.Limits == nil {
		l := faultproxy.AWSKinesisLimits()
		c.Limits = &l
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Against == "" {
		c.Against = "the local Kinesis emulator"
	}
}

// ReadsResult holds the figures of one run.
type ReadsResult struct {
	Consumer              string // "leasehold" or the command's base name
	Against               string // the Kinesis read from
	Workers, Shards, Rate int
	Limits                faultproxy.KinesisLimits

	// Steady window: from Warmup after the steady production began to
	// its end.
	Window        time.Duration
	WindowRecords int     // records processed in the window
	CPUSeconds    float64 // user+system of every consumer process, in the window
	// Wakeups and Preempted are the consumer processes' voluntary and
	// involuntary context switches in the window (all threads, all
	// processes): a voluntary switch is a thread going to sleep, so
	// Wakeups counts how often the processes woke up to do something.
	Wakeups, Preempted int64
	// At rest: every shard read, nothing put (Rest long).
	RestWindow                 time.Duration
	RestCPUSeconds             float64
	RestWakeups, RestPreempted int64
	// CallsPerShardSecond is GetRecords calls (throttled ones included)
	// per shard per second in the window: the mean over shards, and the
	// busiest shard's.
	CallsPerShardSecond, BusiestShardCalls float64
	// PeakCalls is the most GetRecords calls one shard received in any
	// one-second span of the whole run (the ceiling check), and
	// Throttled the calls the proxy refused.
	PeakCalls, Throttled int
	// AnswerP50, AnswerP99: how long Kinesis took to answer GetRecords in
	// the window, at the proxy; seconds mean the emulator, not the
	// consumer, set the pace.
	AnswerP50, AnswerP99 time.Duration
	Latency              []time.Duration // PutRecords acknowledged → processed, for records put in the window
	Missing, Duplicates  int             // over the whole run
	PeakRSS              int64
	Ready                time.Duration // consumers started → every shard being read
	Errors               []error       // what could not be measured

	// Catch-up (Backlog set).
	BacklogRecords int
	BacklogBytes   int64
	CatchUp        time.Duration // consumers started → every backlog record processed
	CatchUpPeak    int           // most calls one shard received in any one second during catch-up
	CatchUpCalls   float64       // GetRecords calls per shard-second during catch-up
}

// Quantile returns the q-quantile of the window's latencies.
func (r ReadsResult) Quantile(q float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.Latency...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// CPUPerThousand is CPU seconds per 1,000 records in the steady window.
func (r ReadsResult) CPUPerThousand() float64 {
	if r.WindowRecords == 0 {
		return 0
	}
	return r.CPUSeconds / float64(r.WindowRecords) * 1000
}

// putAt is when a record's PutRecords was acknowledged.
type putAt struct {
	at      time.Time
	backlog bool
	bytes   int
}

// RunReads runs the read-path benchmark. It creates (and deletes) its
// own stream, starts the consumers and stops them all before it returns.
func RunReads(ctx context.Context, kc *kinesis.Client, cfg ReadsConfig) (ReadsResult, error) {
	cfg.defaults()
	res := ReadsResult{Consumer: "leasehold", Against: cfg.Against, Workers: cfg.Workers, Shards: cfg.Shards, Rate: cfg.Rate, Limits: *cfg.Limits}
	if len(cfg.Consumer) > 0 {
		res.Consumer = filepath.Base(cfg.Consumer[0])
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	run := fmt.Sprintf("benchr-%d", time.Now().UnixNano()%1e9)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &run, ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return res, fmt.Errorf("create stream: %w", err)
	}
	defer kc.DeleteStream(context.WithoutCancel(ctx), &kinesis.DeleteStreamInput{StreamName: &run})
	if err := waitStream(ctx, kc, run); err != nil {
		return res, err
	}
	proxy, err := faultproxy.NewKinesisProxy(cfg.Kinesis, *cfg.Limits)
	if err != nil {
		return res, err
	}
	defer proxy.Close()
	dir, err := os.MkdirTemp("", "leasehold-benchr")
	if err != nil {
		return res, err
	}
	if os.Getenv("LEASEHOLD_BENCH_KEEP_DIR") == "" {
		defer os.RemoveAll(dir)
	} else {
		say("keeping %s", dir)
	}

	puts := map[string]putAt{} // shard/sequence -> acknowledged
	var putsMu sync.Mutex
	record := func(acks []ack, backlog bool) {
		putsMu.Lock()
		for _, a := range acks {
			puts[a.key] = putAt{at: a.at, backlog: backlog, bytes: a.bytes}
		}
		putsMu.Unlock()
	}
	backlogN := cfg.Rate * int(cfg.Backlog.Seconds())
	steadyN := max(0, cfg.Rate*int(cfg.Duration.Seconds()))
	lines := generatedRecords(backlogN + steadyN)
	if backlogN > 0 {
		say("putting a backlog of %d records (%s at %d/s) before any consumer starts", backlogN, cfg.Backlog, cfg.Rate)
		t0 := time.Now()
		if err := putFast(ctx, kc, run, lines[:backlogN], func(a []ack) { record(a, true) }); err != nil {
			return res, err
		}
		res.BacklogRecords = backlogN
		for _, p := range puts {
			res.BacklogBytes += int64(p.bytes)
		}
		say("backlog put in %s (%.1f MB)", time.Since(t0).Round(time.Second), float64(res.BacklogBytes)/1e6)
	}

	cons := &consumers{cfg: cfg, dir: dir, app: run, kinesis: proxy.URL()}
	defer cons.stop()
	started := time.Now()
	for i := range cfg.Workers {
		if err := cons.start(fmt.Sprintf("%s-w%d", run, i+1)); err != nil {
			return res, err
		}
	}
	say("started %d %s consumers on %d shards", cfg.Workers, res.Consumer, cfg.Shards)
	var caughtUp time.Time
	if backlogN > 0 {
		deadline := time.Now().Add(15 * time.Minute)
		for cons.lines() < backlogN {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("backlog not read within 15m: %d of %d records", cons.lines(), backlogN)
			}
			if err := cons.died(); err != nil {
				return res, err
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		caughtUp = time.Now()
		say("backlog read after %s", caughtUp.Sub(started).Round(100*time.Millisecond))
	}

	if steadyN == 0 {
		res.finish(cons, puts, started, time.Time{}, time.Time{}, proxy, backlogN)
		return res, nil
	}
	// The steady part starts once every shard is being read: consumers
	// that take their leases slowly are measured in their steady state.
	// Another consumer gets longer: vmware-go-kcl-v2 at its defaults takes
	// one lease per worker per shard sync (every 30-90 s).
	ready := 5 * time.Minute
	if len(cfg.Consumer) > 0 {
		ready = 12 * time.Minute
	}
	if err := waitAllRead(ctx, proxy, cfg.Shards, ready); err != nil {
		return res, err
	}
	res.Ready = time.Since(started)
	say("every shard read %s after the consumers started", res.Ready.Round(100*time.Millisecond))
	if cfg.Rest > 0 {
		say("measuring the consumers at rest for %s", cfg.Rest)
		u0, t0 := cons.usage(), time.Now()
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(cfg.Rest):
		}
		u1 := cons.usage()
		res.RestWindow = time.Since(t0)
		res.RestCPUSeconds, res.RestWakeups, res.RestPreempted = u1.cpu-u0.cpu, u1.voluntary-u0.voluntary, u1.involuntary-u0.involuntary
	}
	say("producing %d records at %d/s for %s", steadyN, cfg.Rate, cfg.Duration)
	steadyStart := time.Now()
	winStart, winEnd := steadyStart.Add(cfg.Warmup), steadyStart.Add(cfg.Duration)
	var u0 usage
	var profWG sync.WaitGroup
	var profErr error
	marked := false
	// Five PutRecords a second: fewer, larger calls load the emulator
	// less, and arrivals are still spread finely against one-second polls.
	const tick = 200 * time.Millisecond
	perTick := max(1, cfg.Rate/5)
	steady := lines[backlogN:]
	// Each tick's PutRecords runs on its own (at most 32 in flight), so a
	// slow answer from the emulator does not lower the offered rate.
	var putWG sync.WaitGroup
	var putErr error
	var putErrMu sync.Mutex
	inflight := make(chan struct{}, 32)
	for i := 0; i < len(steady); i += perTick {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch := steady[i:min(i+perTick, len(steady))]
		inflight <- struct{}{}
		putWG.Go(func() {
			defer func() { <-inflight }()
			acks, err := putAck(ctx, kc, run, batch)
			if err != nil {
				putErrMu.Lock()
				putErr = err
				putErrMu.Unlock()
				return
			}
			record(acks, false)
		})
		if !marked && time.Now().After(winStart) {
			marked = true
			u0 = cons.usage()
			if cfg.ProfileDir != "" && len(cfg.Consumer) == 0 {
				profWG.Go(func() { profErr = cons.profile(cfg.ProfileDir, time.Until(winEnd)) })
			}
		}
		if d := time.Until(steadyStart.Add(time.Duration(i/perTick+1) * tick)); d > 0 {
			time.Sleep(d)
		}
	}
	putWG.Wait()
	if putErr != nil {
		return res, putErr
	}
	winEnd = time.Now()
	u1 := cons.usage()
	res.CPUSeconds, res.Wakeups, res.Preempted = u1.cpu-u0.cpu, u1.voluntary-u0.voluntary, u1.involuntary-u0.involuntary
	res.Window = winEnd.Sub(winStart)
	profWG.Wait()
	if profErr != nil {
		say("profile: %v", profErr)
	}
	say("waiting until every record is processed")
	total := backlogN + steadyN
	for deadline := time.Now().Add(2 * time.Minute); cons.lines() < total && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(200 * time.Millisecond)
	}
	res.finish(cons, puts, started, winStart, winEnd, proxy, backlogN)
	return res, nil
}

// finish stops the consumers and computes the figures from their output
// and the proxy's calls. winStart and winEnd are zero without a steady
// part.
func (res *ReadsResult) finish(cons *consumers, puts map[string]putAt, started, winStart, winEnd time.Time, proxy *faultproxy.KinesisProxy, backlogN int) {
	res.PeakRSS = cons.peakRSS()
	cons.stop()

	// Every processed record, matched with its put.
	seen := map[string]bool{}
	for _, path := range cons.outs {
		err := scanLines(path, func(l outLine) {
			k := l.ShardID + "/" + l.SequenceNumber
			if seen[k] {
				res.Duplicates++
				return
			}
			seen[k] = true
			p, ok := puts[k]
			if !ok {
				return
			}
			if p.backlog {
				res.CatchUp = max(res.CatchUp, l.ProcessedAt.Sub(started))
			}
			if !l.ProcessedAt.Before(winStart) && !l.ProcessedAt.After(winEnd) {
				res.WindowRecords++
			}
			if !p.backlog && !p.at.Before(winStart) && !p.at.After(winEnd) {
				res.Latency = append(res.Latency, l.ProcessedAt.Sub(p.at))
			}
		})
		if err != nil {
			res.Errors = append(res.Errors, err)
		}
	}
	for k := range puts {
		if !seen[k] {
			res.Missing++
		}
	}

	calls := proxy.Calls()
	res.Throttled = proxy.Throttled()
	var took []time.Duration
	for _, cs := range calls {
		for _, c := range cs {
			if !c.Throttled && !c.At.Before(winStart) && !c.At.After(winEnd) {
				took = append(took, c.Took)
			}
		}
	}
	if len(took) > 0 {
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		res.AnswerP50, res.AnswerP99 = took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	}
	var sum float64
	for shard, cs := range calls {
		if shard == "" {
			continue
		}
		n := 0
		for _, c := range cs {
			if !c.At.Before(winStart) && !c.At.After(winEnd) {
				n++
			}
		}
		if res.Window > 0 {
			perSec := float64(n) / res.Window.Seconds()
			sum += perSec
			res.BusiestShardCalls = max(res.BusiestShardCalls, perSec)
		}
		res.PeakCalls = max(res.PeakCalls, peakPerSecond(cs, time.Time{}, time.Now()))
		if backlogN > 0 {
			res.CatchUpPeak = max(res.CatchUpPeak, peakPerSecond(cs, started, started.Add(res.CatchUp)))
		}
	}
	res.CallsPerShardSecond = sum / float64(res.Shards)
	if backlogN > 0 && res.CatchUp > 0 {
		n := 0
		for shard, cs := range calls {
			if shard == "" {
				continue
			}
			for _, c := range cs {
				if !c.At.Before(started) && c.At.Before(started.Add(res.CatchUp)) {
					n++
				}
			}
		}
		res.CatchUpCalls = float64(n) / float64(res.Shards) / res.CatchUp.Seconds()
	}
	if n := len(calls[""]); n > 0 {
		res.Errors = append(res.Errors, fmt.Errorf("%d GetRecords calls with an iterator the proxy never saw (not counted per shard)", n))
	}
}

// waitAllRead waits until each of the stream's shards has had a
// GetRecords call answered in the last five seconds.
func waitAllRead(ctx context.Context, proxy *faultproxy.KinesisProxy, shards int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n := 0
		for shard, cs := range proxy.Calls() {
			if shard != "" && len(cs) > 0 && time.Since(cs[len(cs)-1].At) < 5*time.Second {
				n++
			}
		}
		if n >= shards {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d shards read within %s of the consumers' start", n, shards, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// peakPerSecond is the most calls in any one-second span within [from, to].
func peakPerSecond(cs []faultproxy.GetRecordsCall, from, to time.Time) int {
	var at []time.Time
	for _, c := range cs {
		if !c.At.Before(from) && !c.At.After(to) {
			at = append(at, c.At)
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	peak, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// ack is one put record: its shard/sequence key, when it was
// acknowledged and its size.
type ack struct {
	key   string
	at    time.Time
	bytes int
}

// putAck puts batch (retrying failed entries) and returns each record's
// acknowledgement.
func putAck(ctx context.Context, kc *kinesis.Client, stream string, batch []genLine) ([]ack, error) {
	entries := make([]types.PutRecordsRequestEntry, 0, len(batch))
	for _, l := range batch {
		h := sha1.Sum(l.data)
		entries = append(entries, types.PutRecordsRequestEntry{Data: l.data, PartitionKey: aws.String(hex.EncodeToString(h[:8]))})
	}
	var out []ack
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt > 20 {
			return nil, errors.New("PutRecords keeps failing")
		}
		resp, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		now := time.Now()
		var retry []types.PutRecordsRequestEntry
		for i, r := range resp.Records {
			if r.ErrorCode != nil {
				retry = append(retry, entries[i])
				continue
			}
			out = append(out, ack{key: aws.ToString(r.ShardId) + "/" + aws.ToString(r.SequenceNumber), at: now,
				bytes: len(entries[i].Data) + len(aws.ToString(entries[i].PartitionKey))})
		}
		entries = retry
	}
	return out, nil
}

// putFast puts lines in batches of 500 from four goroutines.
func putFast(ctx context.Context, kc *kinesis.Client, stream string, lines []genLine, got func([]ack)) error {
	work := make(chan []genLine)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for b := range work {
				acks, err := putAck(ctx, kc, stream, b)
				if err != nil {
					errc <- err
					return
				}
				got(acks)
			}
		})
	}
	var err error
feed:
	for i := 0; i < len(lines); i += 500 {
		select {
		case work <- lines[i:min(i+500, len(lines))]:
		case err = <-errc:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// outLine is what the benchmark reads of a consumer's output line.
type outLine struct {
	ShardID        string    `json:"shard_id"`
	SequenceNumber string    `json:"sequence_number"`
	ProcessedAt    time.Time `json:"processed_at"`
}

func scanLines(path string, fn func(outLine)) error {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var l outLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.ShardID != "" {
			fn(l)
		}
	}
	return sc.Err()
}

// consumers runs the consumer processes of one run.
type consumers struct {
	cfg     ReadsConfig
	dir     string
	app     string // stream and lease table name
	kinesis string // the proxy
	procs   []*exec.Cmd
	exited  []chan struct{} // closed when the process of the same index exits
	logs    []string
	outs    []string
	stopped bool
	read    map[string]int64 // file -> bytes counted by lines
	count   int              // lines counted so far
}

func (c *consumers) start(id string) error {
	out := filepath.Join(c.dir, id+".ndjson")
	logPath := filepath.Join(c.dir, id+".log")
	env := append(append(os.Environ(), c.cfg.Env...), "AWS_ENDPOINT_URL_KINESIS="+c.kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+c.cfg.DynamoDB)
	var cmd *exec.Cmd
	if len(c.cfg.Consumer) > 0 {
		cmd = exec.Command(c.cfg.Consumer[0], c.cfg.Consumer[1:]...)
		cmd.Env = append(env, "LEASEHOLD_BENCH_STREAM="+c.app, "LEASEHOLD_BENCH_APP="+c.app+"-app",
			"LEASEHOLD_BENCH_WORKER_ID="+id, "LEASEHOLD_BENCH_OUT="+out)
	} else {
		// Everything else at its default: the figures are the defaults'.
		cmd = exec.Command(c.cfg.Binary, "worker")
		cmd.Env = append(env, "LEASEHOLD_STREAM_NAME="+c.app, "LEASEHOLD_LEASE_TABLE="+c.app+"-leases",
			"LEASEHOLD_WORKER_ID="+id, "LEASEHOLD_WORKER_FILE_SINK="+out, "LEASEHOLD_LOG_FORMAT=json",
			"LEASEHOLD_WORKER_METRICS_ADDR=127.0.0.1:0")
		if c.cfg.ProfileDir != "" {
			cmd.Env = append(cmd.Env, "LEASEHOLD_WORKER_PPROF=true")
		}
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start consumer %s: %w", id, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.procs = append(c.procs, cmd)
	c.exited = append(c.exited, exited)
	c.logs = append(c.logs, logPath)
	c.outs = append(c.outs, out)
	return nil
}

// lines counts the lines the consumers' files hold so far, reading only
// what they gained since the last call so that watching does not load the
// machine whose figures it measures.
func (c *consumers) lines() int {
	if c.read == nil {
		c.read = map[string]int64{}
	}
	buf := make([]byte, 1<<20)
	for _, p := range c.outs {
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		if _, err := fh.Seek(c.read[p], io.SeekStart); err == nil {
			for {
				n, err := fh.Read(buf)
				c.count += bytes.Count(buf[:n], []byte{'\n'})
				c.read[p] += int64(n)
				if err != nil {
					break
				}
			}
		}
		fh.Close()
	}
	return c.count
}

// usage is what the consumer processes used so far, summed.
type usage struct {
	cpu                    float64 // user+system seconds
	voluntary, involuntary int64   // context switches of every thread
}

func (c *consumers) usage() usage {
	var u usage
	for _, p := range c.procs {
		cpu, _ := procUsage(p.Process.Pid)
		v, i := procSwitches(p.Process.Pid)
		u.cpu += cpu
		u.voluntary += v
		u.involuntary += i
	}
	return u
}

func (c *consumers) peakRSS() int64 {
	var m int64
	for _, p := range c.procs {
		_, rss := procUsage(p.Process.Pid)
		m = max(m, rss)
	}
	return m
}

var metricsAddr = regexp.MustCompile(`"msg":"metrics listening".*?"addr":"([^"]+)"`)

// profile takes a CPU profile of each leasehold worker for d into dir.
func (c *consumers) profile(dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.logs))
	for i, logPath := range c.logs {
		b, _ := os.ReadFile(logPath)
		m := metricsAddr.FindSubmatch(b)
		if m == nil {
			errs[i] = fmt.Errorf("%s: no metrics address in the log", logPath)
			continue
		}
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", m[1], max(1, int(d.Seconds())))
		dst := filepath.Join(dir, fmt.Sprintf("%s.w%d.pprof", c.app, i+1))
		wg.Go(func() {
			resp, err := http.Get(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(dst)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			_, errs[i] = io.Copy(f, resp.Body)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stop sends SIGTERM to every consumer and waits (SIGKILL after 30 s).
func (c *consumers) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range c.procs {
		select {
		case <-c.exited[i]:
		case <-time.After(30 * time.Second):
			_ = p.Process.Kill()
			<-c.exited[i]
		}
	}
}

// died reports a consumer process that exited before stop, with the end
// of its log, which says why.
func (c *consumers) died() error {
	for i, ch := range c.exited {
		select {
		case <-ch:
			b, _ := os.ReadFile(c.logs[i])
			return fmt.Errorf("consumer %d exited (%s); its log ends: %s", i+1, c.procs[i].ProcessState, bytes.TrimSpace(b[max(0, len(b)-400):]))
		default:
		}
	}
	return nil
}

// PrintReads renders a run as a Markdown table.
func PrintReads(w io.Writer, r ReadsResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(tw, "| figure (%s)\t measured\t\n|---\t---\t\n", r.Consumer)
	if r.Window > 0 {
		fmt.Fprintf(tw, "| GetRecords calls per shard-second, steady window (mean over shards; busiest shard)\t %.2f; %.2f\t\n", r.CallsPerShardSecond, r.BusiestShardCalls)
		fmt.Fprintf(tw, "| most GetRecords calls to one shard in any second (whole run)\t %d\t\n", r.PeakCalls)
		fmt.Fprintf(tw, "| consumer CPU seconds per 1,000 records, steady window\t %.3f\t\n", r.CPUPerThousand())
		fmt.Fprintf(tw, "| wake-ups per second per consumer process, steady window (voluntary; involuntary context switches)\t %.0f; %.0f\t\n",
			perProcSecond(r.Wakeups, r.Workers, r.Window), perProcSecond(r.Preempted, r.Workers, r.Window))
	}
	if r.RestWindow > 0 {
		fmt.Fprintf(tw, "| at rest (every shard read, nothing put): CPU seconds per second per consumer process\t %.4f\t\n", r.RestCPUSeconds/float64(r.Workers)/r.RestWindow.Seconds())
		fmt.Fprintf(tw, "| … wake-ups per second per consumer process (voluntary; involuntary)\t %.0f; %.0f\t\n",
			perProcSecond(r.RestWakeups, r.Workers, r.RestWindow), perProcSecond(r.RestPreempted, r.Workers, r.RestWindow))
	}
	if r.Window > 0 {
		fmt.Fprintf(tw, "| put → processed latency, p50\t %.2f s\t\n", r.Quantile(0.5).Seconds())
		fmt.Fprintf(tw, "| … p99\t %.2f s\t\n", r.Quantile(0.99).Seconds())
		fmt.Fprintf(tw, "| Kinesis' time to answer GetRecords, p50; p99 (the emulator's share of the latency)\t %.3f s; %.3f s\t\n", r.AnswerP50.Seconds(), r.AnswerP99.Seconds())
	}
	if r.BacklogRecords > 0 {
		fmt.Fprintf(tw, "| catch-up: consumers started → %d backlog records processed\t %.1f s\t\n", r.BacklogRecords, r.CatchUp.Seconds())
		fmt.Fprintf(tw, "| … read rate per shard during catch-up\t %.2f MB/s\t\n", float64(r.BacklogBytes)/float64(r.Shards)/r.CatchUp.Seconds()/1e6)
		fmt.Fprintf(tw, "| … GetRecords calls per shard-second; most to one shard in any second\t %.2f; %d\t\n", r.CatchUpCalls, r.CatchUpPeak)
	}
	fmt.Fprintf(tw, "| GetRecords calls throttled by the proxy (limits %d/s, %.1f MiB/s per shard)\t %d\t\n", r.Limits.CallsPerSecond, float64(r.Limits.BytesPerSecond)/(1<<20), r.Throttled)
	fmt.Fprintf(tw, "| peak RSS of a consumer\t %.0f MiB\t\n", float64(r.PeakRSS)/(1<<20))
	tw.Flush()
	fmt.Fprintf(w, "\nAgainst %s, behind the harness's limits proxy. %d consumers, %d shards, %d records/s", r.Against, r.Workers, r.Shards, r.Rate)
	if r.BacklogRecords > 0 {
		fmt.Fprintf(w, "; backlog %d records (%.1f MB)", r.BacklogRecords, float64(r.BacklogBytes)/1e6)
	}
	if r.Window > 0 {
		fmt.Fprintf(w, "; every shard read %s after the start; steady window %s (%d records, %.2f CPU-s); %d latency samples",
			r.Ready.Round(100*time.Millisecond), r.Window.Round(time.Second), r.WindowRecords, r.CPUSeconds, len(r.Latency))
	}
	fmt.Fprintf(w, "; missing %d, duplicates %d.\n", r.Missing, r.Duplicates)
	for _, err := range r.Errors {
		fmt.Fprintf(w, "Not measured: %v\n", err)
	}
}

// perProcSecond is n per consumer process per second of d.
func perProcSecond(n int64, procs int, d time.Duration) float64 {
	if procs == 0 || d <= 0 {
		return 0
	}
	return float64(n) / float64(procs) / d.Seconds()
}
