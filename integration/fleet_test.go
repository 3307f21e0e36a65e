package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leasehold-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "leasehold")
	// -tags failpoint: the crash tests aim LEASEHOLD_FAILPOINT at exact
	// stages; a binary built without the tag ignores it.
	build := exec.Command("go", "build", "-race", "-tags", "failpoint", "-o", binary, "../cmd/leasehold")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build leasehold:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fleet runs worker processes of the real binary.
type fleet struct {
	t      *testing.T
	e      testenv.Endpoints
	stream string
	table  string
	dir    string
	procs  map[string]*exec.Cmd
}

func newFleet(t *testing.T, e testenv.Endpoints, stream string) *fleet {
	f := &fleet{t: t, e: e, stream: stream, table: testenv.Name(t, "fleet-leases"), dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	deleteTableAtEnd(t, f.table) // after the workers are killed
	t.Cleanup(func() {
		for _, p := range f.procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	})
	return f
}

func (f *fleet) start(id string, env ...string) {
	cmd := exec.Command(binary, "worker")
	cmd.Env = append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_KINESIS="+f.e.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+f.e.DynamoDB,
		"LEASEHOLD_STREAM_NAME="+f.stream, "LEASEHOLD_LEASE_TABLE="+f.table, "LEASEHOLD_WORKER_ID="+id,
		"LEASEHOLD_WORKER_FILE_SINK="+f.sinkPath(id), "LEASEHOLD_LOG_FORMAT=json",
		"LEASEHOLD_LEASE_DURATION=4s", "LEASEHOLD_LEASE_SAFETY_MARGIN=1s", "LEASEHOLD_LEASE_RENEW_INTERVAL=1s",
		"LEASEHOLD_LEASE_TAKE_INTERVAL=500ms", "LEASEHOLD_WORKER_CHECKPOINT_INTERVAL=1s", "LEASEHOLD_WORKER_IDLE_TIME=200ms", "LEASEHOLD_WORKER_MAX_READ_RATE=5",
		"LEASEHOLD_WORKER_SHUTDOWN_GRACE=10s", "LEASEHOLD_LEASE_SHARD_SYNC_INTERVAL=5s", "LEASEHOLD_WORKER_METRICS_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, env...)
	logf, err := os.Create(filepath.Join(f.dir, id+".log"))
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.procs[id] = cmd
}

// metricsAddr returns the address worker id logged for its metrics server.
func (f *fleet) metricsAddr(id string) string {
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		// The whole log: the line comes early, and a busy worker's later
		// lines push it out of the tail.
		for _, line := range strings.Split(f.log(id), "\n") {
			if strings.Contains(line, `"metrics listening"`) {
				var v struct{ Addr string }
				if json.Unmarshal([]byte(line), &v) == nil && v.Addr != "" {
					return v.Addr
				}
			}
		}
	}
	f.t.Fatalf("worker %s logged no metrics address:\n%s", id, f.logTail(id))
	return ""
}

func (f *fleet) sinkPath(id string) string { return filepath.Join(f.dir, id+".ndjson") }

func (f *fleet) signal(id string, sig syscall.Signal) {
	if err := f.procs[id].Process.Signal(sig); err != nil {
		f.t.Fatalf("signal %s to %s: %v", sig, id, err)
	}
}

// stop sends SIGTERM and waits; the exit status must be 0.
func (f *fleet) stop(id string) {
	f.signal(id, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- f.procs[id].Wait() }()
	select {
	case err := <-done:
		if err != nil {
			f.t.Errorf("worker %s exited with %v after SIGTERM; log:\n%s", id, err, f.logTail(id))
		}
	case <-time.After(20 * time.Second):
		f.t.Errorf("worker %s did not exit within 20s of SIGTERM", id)
		_ = f.procs[id].Process.Kill()
		<-done
	}
	delete(f.procs, id)
}

// waitExit waits up to d for worker id to exit by itself and returns its
// exit error; on timeout it kills it and reports that. Either way the
// worker is reaped and forgotten.
func (f *fleet) waitExit(id string, d time.Duration) (error, bool) {
	cmd := f.procs[id]
	delete(f.procs, id)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err, true
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-exited
		return nil, false
	}
}

func (f *fleet) kill(id string) {
	f.signal(id, syscall.SIGKILL)
	_ = f.procs[id].Wait()
	delete(f.procs, id)
}

func (f *fleet) logTail(id string) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, id+".log"))
	s := string(b)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// log returns worker id's whole log.
func (f *fleet) log(id string) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, id+".log"))
	return string(b)
}

func (f *fleet) sinks(ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, f.sinkPath(id))
	}
	return out
}

func openShards(t *testing.T, kc *kinesis.Client, stream string) []types.Shard {
	out, err := kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	var open []types.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	sort.Slice(open, func(i, j int) bool { return hashStart(open[i]).Cmp(hashStart(open[j])) < 0 })
	return open
}

func hashStart(s types.Shard) *big.Int {
	n, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	return n
}

// TestFleetChaos is the lease protocol's end-to-end proof with real worker
// processes: 3 workers on 8 shards under load; SIGKILL one, SIGTERM
// another, start two more, split one shard and merge two others. Every
// record is processed; duplicates are only records the killed worker had
// written but not checkpointed; per partition key, a parent shard's
// records come before its children's.
func TestFleetChaos(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "fleet")
	createStream(t, kc, stream, 8)
	f := newFleet(t, e, stream)
	prod := startProducer(kc, stream, 64, 40, 25*time.Millisecond)

	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	time.Sleep(8 * time.Second)
	f.kill("w1")
	time.Sleep(2 * time.Second)
	f.stop("w2")
	f.start("w4")
	f.start("w5")
	time.Sleep(3 * time.Second)

	open := openShards(t, kc, stream)
	first := open[0]
	mid := new(big.Int).Add(hashStart(first), new(big.Int).Rsh(new(big.Int).Sub(mustBig(first.HashKeyRange.EndingHashKey), hashStart(first)), 1))
	if _, err := kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: &stream, ShardToSplit: first.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatalf("split: %v", err)
	}
	waitActive(t, kc, stream)
	open = openShards(t, kc, stream)
	a, b := open[len(open)-2], open[len(open)-1]
	if _, err := kc.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: &stream, ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId}); err != nil {
		t.Fatalf("merge: %v", err)
	}
	waitActive(t, kc, stream)
	time.Sleep(8 * time.Second)
	sent := prod.Stop()

	all := []string{"w1", "w2", "w3", "w4", "w5"}
	deadline := time.Now().Add(60 * time.Second)
	var lost int64
	for time.Now().Before(deadline) {
		if lost, _ = tally(readLines(t, f.sinks(all...)...), sent); lost == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	for _, id := range []string{"w3", "w4", "w5"} {
		f.stop(id)
	}
	lines := readLines(t, f.sinks(all...)...)
	lost, dups := tally(lines, sent)
	t.Logf("sent %d records; lost %d; duplicated %d", sent, lost, len(dups))
	if lost != 0 {
		for _, id := range all {
			t.Logf("log of %s:\n%s", id, f.logTail(id))
		}
		t.Fatalf("%d of %d records lost", lost, sent)
	}
	// Every duplicate must have one copy from the SIGKILLed worker: the
	// graceful stop, the scale-out handoffs and the reshard add none.
	for rec, workers := range dups {
		if !contains(workers, "w1") {
			t.Errorf("stream record %s processed by %v without the killed worker: a planned move or reshard duplicated it", rec, workers)
		}
	}
	checkParentsBeforeChildren(t, kc, stream, lines)
	checkGrants(t, lines)
}

// checkParentsBeforeChildren checks that for every partition key, every
// record read from a parent shard was processed before any record of that
// key read from one of its children.
func checkParentsBeforeChildren(t *testing.T, kc *kinesis.Client, stream string, lines []lineT) {
	out, err := kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string][]string{}
	for _, s := range out.Shards {
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				parents[aws.ToString(s.ShardId)] = append(parents[aws.ToString(s.ShardId)], *p)
			}
		}
	}
	type span struct{ first, last time.Time }
	spans := map[string]map[string]*span{} // pk -> shard -> span
	for _, l := range lines {
		m := spans[l.PartitionKey]
		if m == nil {
			m = map[string]*span{}
			spans[l.PartitionKey] = m
		}
		s := m[l.ShardID]
		if s == nil {
			m[l.ShardID] = &span{l.ProcessedAt, l.ProcessedAt}
			continue
		}
		if l.ProcessedAt.Before(s.first) {
			s.first = l.ProcessedAt
		}
		if l.ProcessedAt.After(s.last) {
			s.last = l.ProcessedAt
		}
	}
	checked := 0
	for pk, m := range spans {
		for child, cs := range m {
			for _, p := range parents[child] {
				if ps, ok := m[p]; ok {
					checked++
					if ps.last.After(cs.first) {
						t.Errorf("key %s: parent %s record processed at %s, after child %s began at %s", pk, p, ps.last, child, cs.first)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no partition key spans a parent and a child shard: the reshard was not exercised")
	}
	t.Logf("parent-before-child order checked on %d (key, parent, child) triples", checked)
}

func mustBig(s *string) *big.Int {
	n, _ := new(big.Int).SetString(aws.ToString(s), 10)
	return n
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestZombieWorker pauses a worker (SIGSTOP) past its lease so a peer takes
// its shards, then resumes it (SIGCONT): the zombie must stop processing
// those shards instead of checkpointing over the new owner, and nothing is
// lost.
func TestZombieWorker(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "zombie")
	createStream(t, kc, stream, 2)
	f := newFleet(t, e, stream)
	prod := startProducer(kc, stream, 8, 20, 25*time.Millisecond)
	f.start("z1")
	time.Sleep(4 * time.Second)
	f.start("z2")
	time.Sleep(4 * time.Second)
	f.signal("z1", syscall.SIGSTOP)
	time.Sleep(8 * time.Second) // > lease duration (4s): z2 takes over
	f.signal("z1", syscall.SIGCONT)
	time.Sleep(4 * time.Second)
	sent := prod.Stop()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if lost, _ := tally(readLines(t, f.sinks("z1", "z2")...), sent); lost == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	f.stop("z1")
	f.stop("z2")
	lost, dups := tally(readLines(t, f.sinks("z1", "z2")...), sent)
	t.Logf("sent %d; lost %d; duplicated %d (allowed: the zombie's in-flight batch)", sent, lost, len(dups))
	if lost != 0 {
		t.Fatalf("%d records lost; z1 log:\n%s\nz2 log:\n%s", lost, f.logTail("z1"), f.logTail("z2"))
	}
	checkGrants(t, readLines(t, f.sinks("z1", "z2")...))
	log := f.logTail("z1")
	if !strings.Contains(log, "heartbeat too old") && !strings.Contains(log, "lease lost") && !strings.Contains(log, "checkpoint rejected") && !strings.Contains(log, "declared dead") {
		t.Errorf("the zombie never noticed it lost its leases; log:\n%s", log)
	}
}

// TestCrashBetweenWriteAndCheckpoint aims a crash exactly where a random
// SIGKILL almost never lands: after the sink wrote a batch and before the
// checkpoint. The restarted worker replays from the last checkpoint: no
// record is lost, and the only duplicates are records the crashed process
// had written.
func TestCrashBetweenWriteAndCheckpoint(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "crash")
	createStream(t, kc, stream, 2)
	f := newFleet(t, e, stream)
	prod := startProducer(kc, stream, 8, 20, 25*time.Millisecond)
	f.start("c1", "LEASEHOLD_FAILPOINT=worker.after-process@30")
	err, exited := f.waitExit("c1", 60*time.Second)
	if !exited {
		t.Fatalf("worker never reached the failpoint\n%s", f.logTail("c1"))
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("worker did not crash at the failpoint: %v\n%s", err, f.logTail("c1"))
	}
	f.start("c2")
	time.Sleep(3 * time.Second)
	sent := prod.Stop()
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if lost, _ := tally(readLines(t, f.sinks("c1", "c2")...), sent); lost == 0 {
			break
		}
	}
	f.stop("c2")
	lost, dups := tally(readLines(t, f.sinks("c1", "c2")...), sent)
	t.Logf("sent %d; lost %d; replayed after the crash %d", sent, lost, len(dups))
	if lost != 0 {
		t.Fatalf("%d records lost after a crash between write and checkpoint", lost)
	}
	for rec, ws := range dups {
		if len(ws) != 2 || !contains(ws, "c1") || !contains(ws, "c2") {
			t.Errorf("record %s processed by %v: duplicates must be exactly the crashed worker's uncheckpointed writes replayed once", rec, ws)
		}
	}
}

// TestWorkerMetrics checks a running worker answers /healthz, /readyz and
// /metrics with its lease, record and AWS call counters.
func TestWorkerMetrics(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "metrics")
	createStream(t, kc, stream, 2)
	f := newFleet(t, e, stream)
	prod := startProducer(kc, stream, 4, 10, 50*time.Millisecond)
	defer prod.Stop()
	f.start("m1")
	addr := f.metricsAddr("m1")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wants := []string{
		"leasehold_leases_held 2",
		`leasehold_aws_calls_total{operation="UpdateItem",outcome="ok",service="DynamoDB"}`,
		`leasehold_aws_calls_total{operation="GetRecords",outcome="ok",service="Kinesis"}`,
		"leasehold_shard_millis_behind_latest{shard_id=",
		"leasehold_leases_taken_total 2",
	}
	missing := wants
	for end := time.Now().Add(20 * time.Second); len(missing) > 0 && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		_, body := get("/metrics")
		missing = nil
		for _, want := range wants {
			if !strings.Contains(body, want) {
				missing = append(missing, want)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("/metrics lacks %v", missing)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, b := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, b)
	}
	f.stop("m1")
}
