package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
)

// procs runs worker processes of the real binary, each talking to
// DynamoDB through a proxy of its own (to count its calls and fault it
// alone).
type procs struct {
	cfg                LeaseConfig
	dir, stream, table string
	byID               map[string]*proc
	proxies            map[string]*faultproxy.DynamoProxy
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (f *procs) proxy(id string) (*faultproxy.DynamoProxy, error) {
	if p, ok := f.proxies[id]; ok {
		return p, nil
	}
	p, err := faultproxy.StartDynamoProxy(f.cfg.DynamoDB)
	if err != nil {
		return nil, err
	}
	p.SetLabel(labelCall)
	if f.proxies == nil {
		f.proxies = map[string]*faultproxy.DynamoProxy{}
	}
	f.proxies[id] = p
	return p, nil
}

func (f *procs) start(id string) error {
	px, err := f.proxy(id)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.cfg.Binary, "worker")
	cmd.Env = append(append(os.Environ(), f.cfg.Env...),
		"AWS_ENDPOINT_URL_KINESIS="+f.cfg.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+px.URL(),
		"LEASEHOLD_STREAM_NAME="+f.stream, "LEASEHOLD_LEASE_TABLE="+f.table, "LEASEHOLD_WORKER_ID="+id,
		"LEASEHOLD_WORKER_FILE_SINK="+filepath.Join(f.dir, id+".ndjson"), "LEASEHOLD_LOG_FORMAT=json", "LEASEHOLD_LOG_LEVEL=info",
		"LEASEHOLD_LEASE_DURATION="+f.cfg.Duration.String(), "LEASEHOLD_LEASE_TAKE_INTERVAL="+f.cfg.TakeInterval.String(),
		"LEASEHOLD_LEASE_RENEW_INTERVAL="+f.cfg.Renew.String(), "LEASEHOLD_LEASE_SAFETY_MARGIN="+f.cfg.Margin.String(),
		"LEASEHOLD_WORKER_CHECKPOINT_INTERVAL=1s", "LEASEHOLD_WORKER_IDLE_TIME=200ms", "LEASEHOLD_WORKER_MAX_READ_RATE=5", "LEASEHOLD_WORKER_METRICS_ADDR=127.0.0.1:0",
	)
	logf, err := os.OpenFile(filepath.Join(f.dir, id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start worker %s: %w", id, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	f.byID[id] = p
	return nil
}

func (f *procs) signal(id string, sig syscall.Signal) {
	if p := f.byID[id]; p != nil {
		_ = p.cmd.Process.Signal(sig)
		if sig == syscall.SIGKILL {
			f.wait(id)
		}
	}
}

func (f *procs) wait(id string) {
	if p := f.byID[id]; p != nil {
		<-p.done
		delete(f.byID, id)
	}
}

func (f *procs) stopAll() {
	for _, p := range f.byID {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for id, p := range f.byID {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		delete(f.byID, id)
	}
}

// stats returns every proxy's counters.
func (f *procs) stats() []faultproxy.DynamoStats {
	var out []faultproxy.DynamoStats
	for _, p := range f.proxies {
		out = append(out, p.Stats())
	}
	return out
}

func (f *procs) resetStats() {
	for _, p := range f.proxies {
		p.ResetStats()
	}
}

// labelCalls sums the forwarded calls with a label over every proxy.
func (f *procs) labelCalls(label string) int64 {
	var n int64
	for _, s := range f.stats() {
		n += s.Labels[label].Calls
	}
	return n
}

// lines reads every worker's sink file.
func (f *procs) lines() []filesink.Line {
	var out []filesink.Line
	files, _ := filepath.Glob(filepath.Join(f.dir, "*.ndjson"))
	for _, path := range files {
		forEachLine(path, func(l filesink.Line) { out = append(out, l) })
	}
	return out
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
	for _, l := range f.lines() {
		k := l.ShardID + "/" + l.SequenceNumber + "/" + strconv.FormatInt(l.SubSequenceNumber, 10)
		seen[k] = append(seen[k], l.WorkerID)
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
			if shards[l.ShardID] && l.Owner != "" && lease.WorkerName(l.Owner) != from {
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
		if lease.WorkerName(l.Owner) == id && !l.Ended() {
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
		if spreadOK(snap, ids) {
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

// spreadOK reports whether every unended lease is owned (not promised to
// another worker) by one of ids, within one of each other.
func spreadOK(snap lease.Snapshot, ids []string) bool {
	count := map[string]int{}
	ok := len(snap.Leases) > 0
	for _, l := range snap.Leases {
		if l.Ended() {
			continue
		}
		if l.Owner == "" || l.HandoffTo != "" {
			ok = false
		}
		count[lease.WorkerName(l.Owner)]++
	}
	lo, hi := 1<<30, 0
	for _, id := range ids {
		lo, hi = min(lo, count[id]), max(hi, count[id])
	}
	return ok && hi-lo <= 1
}
