package worker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// The tests in this file run a whole worker on one shard inside a
// synctest bubble (virtual time) against shardKinesis, and look at when
// it called GetRecords.

// shardKinesis is one open shard "s0" whose records arrive while the test
// runs. It answers GetRecords as Kinesis does: at most Limit records,
// MillisBehindLatest from the last returned record's arrival to the
// newest one's. refuse, when set, decides whether a call is refused with
// ProvisionedThroughputExceeded.
type shardKinesis struct {
	mu      sync.Mutex
	recs    []types.Record
	calls   []gotCall
	refuse  func(now time.Time) bool
	payload int // bytes of data per record
}

type gotCall struct {
	at        time.Time
	limit     int
	records   int
	bytes     int
	throttled bool
}

func (k *shardKinesis) add(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for range n {
		seq := strconv.Itoa(1000 + len(k.recs))
		k.recs = append(k.recs, types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String("pk"),
			Data: []byte(strings.Repeat("x", k.payload)), ApproximateArrivalTimestamp: aws.Time(time.Now())})
	}
}

func (k *shardKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{ShardId: aws.String("s0")}}}, nil
}

func (k *shardKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("0")}, nil
}

func (k *shardKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := gotCall{at: time.Now(), limit: int(aws.ToInt32(in.Limit))}
	if k.refuse != nil && k.refuse(c.at) {
		c.throttled = true
		k.calls = append(k.calls, c)
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded for shard s0")}
	}
	idx, _ := strconv.Atoi(aws.ToString(in.ShardIterator))
	end := min(idx+c.limit, len(k.recs))
	out := &kinesis.GetRecordsOutput{Records: k.recs[idx:end], NextShardIterator: aws.String(strconv.Itoa(end)), MillisBehindLatest: aws.Int64(0)}
	if end > idx && end < len(k.recs) {
		out.MillisBehindLatest = aws.Int64(k.recs[len(k.recs)-1].ApproximateArrivalTimestamp.Sub(*k.recs[end-1].ApproximateArrivalTimestamp).Milliseconds())
	}
	c.records = end - idx
	c.bytes = recordBytes(out.Records)
	k.calls = append(k.calls, c)
	return out, nil
}

func (k *shardKinesis) callsBetween(from, to time.Time) []gotCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []gotCall
	for _, c := range k.calls {
		if !c.at.Before(from) && c.at.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// latencyProc records each record's time from arrival to Process.
type latencyProc struct {
	mu   sync.Mutex
	lat  []time.Duration
	last checkpoint.Position
}

func (p *latencyProc) factory(context.Context, Shard) (ShardProcessor, error) { return p, nil }
func (p *latencyProc) Process(_ context.Context, recs []Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		p.lat = append(p.lat, time.Since(r.ArrivalTime))
	}
	p.last = recs[len(recs)-1].Position()
	return nil
}
func (p *latencyProc) Flush(context.Context) (checkpoint.Checkpoint, error) { return p.Durable(), nil }
func (p *latencyProc) Durable() checkpoint.Checkpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return checkpoint.Checkpoint{Position: p.last}
}
func (p *latencyProc) Close(CloseReason) error { return nil }

func (p *latencyProc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat)
}

func (p *latencyProc) quantile(q float64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := append([]time.Duration(nil), p.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// runPaced runs a worker with the default pacing on kin's shard for d of
// virtual time while body runs, then stops it gracefully.
func runPaced(t *testing.T, kin *shardKinesis, proc *latencyProc, d time.Duration, body func(w *Worker)) {
	t.Helper()
	store := leasetest.NewFake()
	if err := store.Create(context.Background(), lease.Lease{ShardID: "s0", Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
		t.Fatal(err)
	}
	runPacedOn(t, store, kin, proc, d, body)
}

// runPacedOn is runPaced over a lease table of the test's own.
func runPacedOn(t *testing.T, store lease.Store, kin *shardKinesis, proc *latencyProc, d time.Duration, body func(w *Worker)) {
	t.Helper()
	w, err := New(kin, store, proc.factory, Config{StreamName: "st",
		Lease: lease.Config{WorkerID: "w", Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if body != nil {
		body(w)
	}
	time.Sleep(d)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkGaps fails if two calls were closer than the ceiling allows or a
// one-second window held more calls than the ceiling.
func checkGaps(t *testing.T, calls []gotCall, ceiling int) {
	t.Helper()
	for i := 1; i < len(calls); i++ {
		if d := calls[i].at.Sub(calls[i-1].at); d < time.Second/time.Duration(ceiling) {
			t.Fatalf("calls %d and %d only %s apart", i-1, i, d)
		}
	}
	for i := range calls {
		n := 0
		for j := i; j < len(calls) && calls[j].at.Sub(calls[i].at) < time.Second; j++ {
			n++
		}
		if n > ceiling {
			t.Fatalf("%d calls in the second from %s, ceiling %d", n, calls[i].at.Format("05.000"), ceiling)
		}
	}
}

// TestCaughtUpShardIsReadOncePerSecond is the steady workload: 25
// records a second arrive on the shard (200/s over 8 shards). The worker
// calls GetRecords once a second, not back to back as the records
// trickle in, and each record is processed within about a second.
func TestCaughtUpShardIsReadOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &shardKinesis{payload: 500}
		proc := &latencyProc{}
		start := time.Now()
		runPaced(t, kin, proc, 62*time.Second, func(*Worker) {
			go func() {
				for range 60 * 25 {
					time.Sleep(40 * time.Millisecond)
					kin.add(1)
				}
			}()
		})
		calls := kin.callsBetween(start.Add(5*time.Second), start.Add(60*time.Second))
		if n := len(calls); n < 50 || n > 56 {
			t.Fatalf("%d GetRecords calls in 55 s caught up, want about one a second", n)
		}
		checkGaps(t, calls, 1)
		if proc.count() != 60*25 {
			t.Fatalf("processed %d of %d records", proc.count(), 60*25)
		}
		p50, p99 := proc.quantile(0.5), proc.quantile(0.99)
		t.Logf("arrival → processed: p50 %s, p99 %s", p50, p99)
		if p50 > 600*time.Millisecond || p99 > 1100*time.Millisecond {
			t.Fatalf("arrival → processed p50 %s, p99 %s; want at most 0.6 s and a poll interval", p50, p99)
		}
	})
}

// TestAHandedLeaseWaitsOneCeilingIntervalBeforeItsFirstRead: a lease a
// live owner released (or handed over) moments before this worker took it
// may have been read by that owner just before, so the new consumer's
// first GetRecords is one ceiling interval (0.5 s at max_read_rate 2)
// after the release: the old owner's last call and the new owner's first
// two never fit in one second. A lease released longer ago than that, or
// never owned, is read at once. (A lease taken from an owner declared
// dead is read at once too: Grant.HandedAt, tested in the lease package.)
func TestAHandedLeaseWaitsOneCeilingIntervalBeforeItsFirstRead(t *testing.T) {
	for _, tc := range []struct {
		name      string
		owner     string        // "" : never owned
		releaseAt time.Duration // after the worker's start; the first pass takes the lease 0.9–1.1 s after it
	}{
		{"never owned", "", 0},
		{"released just before the take", "old~1", 800 * time.Millisecond},
		{"released long before the take", "old~1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := leasetest.NewFake()
				l := lease.Lease{ShardID: "s0", Owner: tc.owner, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}
				if tc.owner != "" {
					l.Epoch = 3
				}
				if err := fake.Create(context.Background(), l); err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var took, released time.Time
				store := &leasetest.Faulty{Store: fake, After: func(_ context.Context, method string, err error) error {
					if method == "Take" && err == nil {
						mu.Lock()
						took = time.Now()
						mu.Unlock()
					}
					return err
				}}
				kin := &shardKinesis{payload: 100}
				kin.add(10)
				runPacedOn(t, store, kin, &latencyProc{}, 5*time.Second, func(*Worker) {
					if tc.owner == "" {
						return
					}
					time.Sleep(tc.releaseAt)
					released = time.Now()
					if _, err := fake.Transfer(context.Background(), "s0", tc.owner, 3, l.Checkpoint, ""); err != nil {
						t.Error(err)
					}
				})
				calls := kin.callsBetween(time.Time{}, time.Now().Add(time.Hour))
				if len(calls) == 0 || took.IsZero() {
					t.Fatalf("%d calls, take at %v: the lease was not read", len(calls), took)
				}
				want := time.Duration(0)
				if tc.owner != "" {
					want = max(0, 500*time.Millisecond-took.Sub(released))
				}
				if tc.releaseAt > 0 && want <= 0 {
					t.Fatalf("took the lease %s after its release: the case needs a take within 0.5 s", took.Sub(released))
				}
				if d := calls[0].at.Sub(took); d != want {
					t.Fatalf("first GetRecords %s after the take (%s after the release), want %s", d, took.Sub(released), want)
				}
			})
		})
	}
}

// TestBehindShardIsReadAtTheCeilingAndTheByteRate is a backlog: 20 MB
// are waiting. The worker reads at most max_read_rate calls a second, in
// batches of about 1 MB, never faster than 2 MB/s, and catches up in
// about 10 s.
func TestBehindShardIsReadAtTheCeilingAndTheByteRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &shardKinesis{payload: 498} // 500 bytes with the partition key
		kin.add(40_000)
		time.Sleep(time.Minute) // an old backlog: MillisBehindLatest is not what marks it
		proc := &latencyProc{}
		start := time.Now()
		caught := make(chan time.Duration, 1)
		runPaced(t, kin, proc, 20*time.Second, func(*Worker) {
			go func() {
				for proc.count() < 40_000 {
					time.Sleep(10 * time.Millisecond)
				}
				caught <- time.Since(start)
			}()
		})
		caughtUp := <-caught
		calls := kin.callsBetween(start, start.Add(time.Hour))
		checkGaps(t, calls, 2)
		read := 0
		for _, c := range calls {
			read += c.bytes
			if c.records > 0 && c.bytes > 1_100_000 {
				t.Fatalf("a call returned %d bytes (limit %d); want batches of about 1 MB", c.bytes, c.limit)
			}
		}
		if read != 40_000*500 {
			t.Fatalf("read %d bytes, want %d", read, 40_000*500)
		}
		t.Logf("20 MB backlog read in %s with %d calls", caughtUp, len(calls))
		if caughtUp < 10*time.Second-600*time.Millisecond || caughtUp > 11*time.Second {
			t.Fatalf("caught up after %s; want about 10 s at 2 MB/s", caughtUp)
		}
	})
}

// TestThrottledReadsBackOffAndAreCounted refuses every call for 10 s, as
// Kinesis does when other consumers use up the shard's reads. The worker
// backs off (waits growing from about a second), counts each refusal in
// its metrics, and reads on once the shard answers again. The backoff
// after the last refusal can reach throttleMax (10 s), so the run lasts
// long enough for the slowest jitter to read everything.
func TestThrottledReadsBackOffAndAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		kin := &shardKinesis{payload: 100, refuse: func(now time.Time) bool {
			return now.Sub(start) >= 2*time.Second && now.Sub(start) < 12*time.Second
		}}
		proc := &latencyProc{}
		got := make(chan Stats, 1)
		runPaced(t, kin, proc, 35*time.Second, func(w *Worker) {
			go func() {
				for range 19 {
					kin.add(10)
					time.Sleep(time.Second)
				}
			}()
			go func() {
				time.Sleep(32*time.Second + 500*time.Millisecond) // between two polls: caught-up polls fall on whole seconds
				got <- w.Stats()
			}()
		})
		stats := <-got
		var refused []gotCall
		for _, c := range kin.callsBetween(start, start.Add(time.Hour)) {
			if c.throttled {
				refused = append(refused, c)
			}
		}
		if len(refused) < 3 || len(refused) > 10 {
			t.Fatalf("%d calls refused in 10 s; want a few, spaced by a growing backoff", len(refused))
		}
		var gaps []string
		for i := 1; i < len(refused); i++ {
			gap := refused[i].at.Sub(refused[i-1].at)
			gaps = append(gaps, gap.String())
			if gap < 500*time.Millisecond {
				t.Fatalf("retried after %s", gap)
			}
		}
		t.Logf("retries after %s", strings.Join(gaps, ", "))
		if got := stats.Reads["s0"].Throttled; got != int64(len(refused)) {
			t.Fatalf("metrics count %d throttled calls, Kinesis refused %d", got, len(refused))
		}
		if got, all := stats.Reads["s0"].Calls, len(kin.callsBetween(start, start.Add(32*time.Second+500*time.Millisecond))); got != int64(all) {
			t.Fatalf("metrics count %d calls, Kinesis saw %d", got, all)
		}
		if proc.count() != 190 {
			t.Fatalf("processed %d of 190 records after the throttling ended", proc.count())
		}
	})
}

func TestPacingConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{MaxReadRate: 6}, "worker.max_read_rate: 6 is out of range"},
		{Config{MaxReadRate: -1}, "worker.max_read_rate: -1 is out of range"},
		{Config{IdleTime: 100 * time.Millisecond}, "worker.idle_time: 100ms is shorter"},
		{Config{IdleTime: 100 * time.Millisecond, MaxReadRate: 5}, "worker.idle_time: 100ms is shorter"},
		{Config{BehindThreshold: -time.Second}, "worker.behind_threshold: must not be negative"},
		{Config{ReadBytesPerSecond: 3 << 20}, "worker.read_bytes_per_second: 3145728 is out of range"},
		{Config{ReadBytesPerSecond: 10}, "worker.read_bytes_per_second: 10 is out of range"},
	} {
		c := tc.c
		c.StreamName = "st"
		c.defaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.c, err, tc.want)
		}
	}
	ok := Config{StreamName: "st", IdleTime: 200 * time.Millisecond, MaxReadRate: 5, Lease: lease.Config{WorkerID: "w"}}
	ok.defaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	var d Config
	d.defaults()
	if got := fmt.Sprint(d.IdleTime, d.MaxReadRate, d.BehindThreshold, d.ReadBytesPerSecond, d.MaxRecords); got != "1s 2 1s 2000000 10000" {
		t.Fatalf("defaults %s", got)
	}
}

// shardsKinesis is several shardKinesis behind one client, named s0, s1,
// ... Shard i's iterator comes i×startStep after it is asked for (so the
// consumers start out of step, as leases taken one pass apart do), and
// its GetRecords answers after answer(i).
type shardsKinesis struct {
	shards    []*shardKinesis
	startStep time.Duration
	answer    func(i int) time.Duration
}

func (k *shardsKinesis) index(id string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(id, "s"))
	return i
}

func (k *shardsKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	out := &kinesis.ListShardsOutput{}
	for i := range k.shards {
		out.Shards = append(out.Shards, types.Shard{ShardId: aws.String(fmt.Sprintf("s%d", i))})
	}
	return out, nil
}

func (k *shardsKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	i := k.index(aws.ToString(in.ShardId))
	time.Sleep(time.Duration(i) * k.startStep)
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("s%d/0", i))}, nil
}

func (k *shardsKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	id, idx, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	i := k.index(id)
	out, err := k.shards[i].GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(idx), Limit: in.Limit}, opts...)
	time.Sleep(k.answer(i))
	if out != nil {
		out.NextShardIterator = aws.String(id + "/" + aws.ToString(out.NextShardIterator))
	}
	return out, err
}

// TestCaughtUpShardsOfAWorkerArePolledInTheSameInstant: three caught-up
// shards whose consumers started 0.33 s apart and whose reads take
// different times are polled together, in one instant per second (so a
// worker process wakes once a second for all of them), each still once a
// second, and the records' latency is what one shard's was.
func TestCaughtUpShardsOfAWorkerArePolledInTheSameInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &shardsKinesis{startStep: 333 * time.Millisecond, answer: func(i int) time.Duration { return time.Duration(20+30*i) * time.Millisecond }}
		for range 3 {
			kin.shards = append(kin.shards, &shardKinesis{payload: 500})
		}
		store := leasetest.NewFake()
		for i := range kin.shards {
			if err := store.Create(context.Background(), lease.Lease{ShardID: fmt.Sprintf("s%d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
				t.Fatal(err)
			}
		}
		proc := &latencyProc{}
		w, err := New(kin, store, proc.factory, Config{StreamName: "st",
			Lease: lease.Config{WorkerID: "w", Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second}}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		for i, s := range kin.shards {
			go func() { // from 3 s on, 25 records a second on each shard, out of step with each other
				time.Sleep(3*time.Second + time.Duration(i)*13*time.Millisecond)
				for range 40 * 25 {
					time.Sleep(40 * time.Millisecond)
					s.add(1)
				}
			}()
		}
		time.Sleep(45 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		from, to := start.Add(5*time.Second), start.Add(40*time.Second)
		instants := map[time.Time]int{}
		for i, s := range kin.shards {
			calls := s.callsBetween(from, to)
			if n := len(calls); n < 34 || n > 36 {
				t.Fatalf("shard s%d: %d calls in 35 s caught up, want one a second", i, n)
			}
			checkGaps(t, calls, 1)
			for _, c := range calls {
				instants[c.at]++
			}
		}
		for at, n := range instants {
			if n != len(kin.shards) {
				t.Fatalf("%d of %d shards polled at %s: the worker's polls are out of step (%d instants in 35 s)",
					n, len(kin.shards), at.Sub(start), len(instants))
			}
		}
		if proc.count() != 3*40*25 {
			t.Fatalf("processed %d of %d records", proc.count(), 3*40*25)
		}
		p50, p99 := proc.quantile(0.5), proc.quantile(0.99)
		t.Logf("%d poll instants in 35 s for 3 shards; arrival → processed: p50 %s, p99 %s", len(instants), p50, p99)
		if p50 > 600*time.Millisecond || p99 > 1100*time.Millisecond {
			t.Fatalf("arrival → processed p50 %s, p99 %s; want at most 0.6 s and a poll interval plus the answer", p50, p99)
		}
	})
}
