package integration

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/worker"
)

// TestTwoConsumersShareAShardsReads puts two independent applications on
// one stream behind a proxy that enforces AWS's GetRecords limits per
// shard across both of them (5 calls and 2 MiB per second), in front of
// the real local Kinesis. A is a leasehold worker at its default pacing;
// B is another application that reads four times a second (max_read_rate
// 4, idle_time 250ms), so together they ask for more than a shard answers
// and both get throttled. (A reader at the full 5 calls a second
// would take every call of the shard's window, as it would on AWS; no
// pacing of A can share a shard with that.) Both keep up: every record
// reaches each of them, within seconds of being put, and the
// throttling shows in the workers' metrics.
func TestTwoConsumersShareAShardsReads(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc, db := testenv.Kinesis(e), testenv.DynamoDB(e)
	stream := testenv.Name(t, "pace")
	createStream(t, kc, stream, 2)
	proxy, err := faultproxy.NewKinesisProxy(e.Kinesis, faultproxy.AWSKinesisLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	viaProxy := testenv.Kinesis(testenv.Endpoints{Kinesis: proxy.URL()})
	dir := t.TempDir()

	type app struct {
		w    *worker.Worker
		stop func()
		path string
	}
	start := func(name string, tweak func(*worker.Config)) app {
		path := filepath.Join(dir, name+".ndjson")
		sink, err := filesink.Open(path, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		cfg := worker.Config{StreamName: stream, CheckpointInterval: time.Second, ShutdownGrace: 10 * time.Second,
			Lease: lease.Config{WorkerID: name, Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 2 * time.Second, TakeInterval: 500 * time.Millisecond}}
		if tweak != nil {
			tweak(&cfg)
		}
		table := testenv.Name(t, "pace-"+name)
		deleteTableAtEnd(t, table)
		w, err := worker.New(viaProxy, leaseStore(t, db, table), sink.Factory(), cfg, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		var once sync.Once
		return app{w: w, path: path, stop: func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("worker %s: %v", name, err)
				}
				sink.Close()
			})
		}}
	}
	a := start("A", nil)
	b := start("B", func(c *worker.Config) { c.MaxReadRate, c.IdleTime = 4, 250*time.Millisecond })
	defer a.stop()
	defer b.stop()

	// About 40 records a second for 30 s. Each record's put is bounded by
	// two samples of the producer's count; latency below is measured from
	// the sample before the put, so it can only be overstated.
	prod := startProducer(kc, stream, 16, 8, 200*time.Millisecond)
	type sample struct {
		at   time.Time
		sent int64
	}
	var samples []sample
	var smu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			smu.Lock()
			samples = append(samples, sample{time.Now(), prod.next.Load()})
			smu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	time.Sleep(30 * time.Second)
	sent := prod.Stop()
	close(stopSampling)
	<-sampled
	putBefore := func(n int64) time.Time { // the last sample taken before record n was acknowledged
		i := sort.Search(len(samples), func(i int) bool { return samples[i].sent > n })
		return samples[max(0, i-1)].at
	}

	for _, c := range []app{a, b} {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if lost, _ := tally(readLines(t, c.path), sent); lost == 0 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Stopped first, so that no refused call is still on its way back
	// when the workers' counts are compared with the proxy's.
	a.stop()
	b.stop()
	statsA, statsB := a.w.Stats(), b.w.Stats()
	for name, c := range map[string]app{"A": a, "B": b} {
		lines := readLines(t, c.path)
		lost, _ := tally(lines, sent)
		if lost != 0 {
			t.Errorf("consumer %s: %d of %d records never processed", name, lost, sent)
		}
		var lat []time.Duration
		for _, l := range lines {
			n, err := strconv.ParseInt(l.Data, 10, 64)
			if err != nil || putBefore(n).Before(samples[0].at.Add(5*time.Second)) {
				continue // the start, while leases are taken, is not the steady state
			}
			lat = append(lat, l.ProcessedAt.Sub(putBefore(n)))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 {
			t.Fatalf("consumer %s processed nothing after the start", name)
		}
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		t.Logf("consumer %s: %d records, put → processed p50 %s, p99 %s (at most, measured from the sample before each put)", name, len(lines), p50.Round(10*time.Millisecond), p99.Round(10*time.Millisecond))
		// Keeping up means no shard is left waiting: a few refusals in a
		// row cost 1+2+3 s of backoff at most on top of the pacing; a
		// consumer starved by the other stays behind far longer.
		if p99 > 10*time.Second {
			t.Errorf("consumer %s fell behind: put → processed p99 %s, want within 10 s", name, p99)
		}
	}

	var throttledA, throttledB, callsA int64
	for _, r := range statsA.Reads {
		throttledA += r.Throttled
		callsA += r.Calls
	}
	for _, r := range statsB.Reads {
		throttledB += r.Throttled
	}
	t.Logf("proxy refused %d GetRecords calls; A counted %d throttled of %d calls, B %d throttled", proxy.Throttled(), throttledA, callsA, throttledB)
	if proxy.Throttled() == 0 {
		t.Error("no call was throttled: the test did not make the consumers compete")
	}
	if throttledA+throttledB != int64(proxy.Throttled()) {
		t.Errorf("the workers counted %d throttled calls, the proxy refused %d", throttledA+throttledB, proxy.Throttled())
	}
	// A paces itself: about one call a second per shard while caught up,
	// never more than its ceiling of 2.
	if perShardSecond := float64(callsA) / 2 / 35; perShardSecond > 2 {
		t.Errorf("A made %.1f GetRecords calls per shard-second, above its ceiling of 2", perShardSecond)
	}
}
