package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// The tests in this file run whole workers against the in-memory lease
// store and Kinesis inside a synctest bubble: virtual time, -short.

// write is one record a processor wrote to its destination.
type write struct {
	worker string
	seq    string
	at     time.Time
}

// sinkLog records every write of every worker's processors, and why each
// processor was closed.
type sinkLog struct {
	mu     sync.Mutex
	writes map[string][]write // shard -> writes in order
	closes map[string][]string
}

func newSinkLog() *sinkLog {
	return &sinkLog{writes: map[string][]write{}, closes: map[string][]string{}}
}

// procOpts shape a test processor.
type procOpts struct {
	perRecord  time.Duration // time each record's write takes (a slow sink)
	noDurable  bool          // nothing ever becomes durable (a sink that is down)
	flushHangs bool          // Flush blocks until ctx ends
	failAt     int           // Process fails on this record of the shard (1-based; 0: never)
}

func (l *sinkLog) factory(worker string, o procOpts) ProcessorFactory {
	return func(ctx context.Context, s Shard) (ShardProcessor, error) {
		return &logProc{l: l, worker: worker, shard: s.ShardID, o: o}, nil
	}
}

type logProc struct {
	l      *sinkLog
	worker string
	shard  string
	o      procOpts
	pos    checkpoint.Position
	n      int // records seen, for failAt
}

// Process writes each record after checking the lease context, as the
// pipeline does before every sink write.
func (p *logProc) Process(ctx context.Context, recs []Record) error {
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.o.failAt > 0 {
			if p.n++; p.n == p.o.failAt {
				return errors.New("processor failed")
			}
		}
		p.l.mu.Lock()
		p.l.writes[p.shard] = append(p.l.writes[p.shard], write{p.worker, r.SequenceNumber, time.Now()})
		p.l.mu.Unlock()
		p.pos = r.Position()
		if p.o.perRecord > 0 {
			time.Sleep(p.o.perRecord)
		}
	}
	return nil
}

func (p *logProc) Flush(ctx context.Context) (checkpoint.Checkpoint, error) {
	if p.o.flushHangs {
		<-ctx.Done()
		return checkpoint.Checkpoint{}, ctx.Err()
	}
	return p.Durable(), nil
}

func (p *logProc) Durable() checkpoint.Checkpoint {
	if p.o.noDurable {
		return checkpoint.Checkpoint{}
	}
	return checkpoint.Checkpoint{Position: p.pos}
}

func (p *logProc) Close(r CloseReason) error {
	p.l.mu.Lock()
	p.l.closes[p.shard] = append(p.l.closes[p.shard], p.worker+":"+r.String())
	p.l.mu.Unlock()
	return nil
}

// overlap checks the invariant: for every shard, no record was written
// by a worker after another worker wrote its first record of that shard
// later than it.
func (l *sinkLog) overlap(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for shard, ws := range l.writes {
		// Split into runs of one worker; each run must end before the next
		// begins.
		for i := 1; i < len(ws); i++ {
			if ws[i].worker != ws[i-1].worker && ws[i].at.Before(ws[i-1].at) {
				t.Errorf("shard %s: %s wrote %s at %s after %s had begun at %s", shard, ws[i-1].worker, ws[i-1].seq, ws[i-1].at.Format("05.000"), ws[i].worker, ws[i].at.Format("05.000"))
			}
		}
		last := map[string]time.Time{}
		first := map[string]time.Time{}
		for _, w := range ws {
			if _, ok := first[w.worker]; !ok {
				first[w.worker] = w.at
			}
			last[w.worker] = w.at
		}
		for a, la := range last {
			for b, fb := range first {
				if a != b && fb.After(first[a]) && la.After(fb) {
					t.Errorf("shard %s: %s wrote until %s, after %s's first write at %s", shard, a, la.Format("05.000"), b, fb.Format("05.000"))
				}
			}
		}
	}
}

// seen returns the distinct sequence numbers written for shard, and how
// many writes repeated one.
func (l *sinkLog) seen(shard string) (distinct map[string]bool, dups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	distinct = map[string]bool{}
	for _, w := range l.writes[shard] {
		if distinct[w.seq] {
			dups++
		}
		distinct[w.seq] = true
	}
	return distinct, dups
}

func (l *sinkLog) closeReasons(shard string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.closes[shard]...)
}

// appendRecords adds n records arriving now to shard.
func (f *fakeKinesis) appendRecords(shard string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		seq := 1000 + len(f.records[shard])
		f.records[shard] = append(f.records[shard], types.Record{SequenceNumber: aws.String(strconv.Itoa(seq)), PartitionKey: aws.String("pk"),
			Data: []byte(shard + "-" + strconv.Itoa(seq)), ApproximateArrivalTimestamp: aws.Time(time.Now())})
	}
}

func (f *fakeKinesis) count(shard string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.records[shard])
}

// produce appends a record to each shard every interval until ctx ends.
func (f *fakeKinesis) produce(ctx context.Context, wg *sync.WaitGroup, every time.Duration, shards ...string) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, s := range shards {
				f.appendRecords(s, 1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
}

var defaultLease = lease.Config{Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second}

type running struct {
	w      *Worker
	store  *leasetest.Faulty
	cancel context.CancelFunc
	done   chan error
	fault  atomic.Pointer[func(ctx context.Context, method string) error]
}

// startWorker runs a worker on the shared fake store, through a store
// wrapper whose faults the test can set.
func startWorker(t *testing.T, name string, kin KinesisAPI, fake *leasetest.Fake, factory ProcessorFactory, tweak func(*Config)) *running {
	t.Helper()
	r := &running{done: make(chan error, 1)}
	r.store = &leasetest.Faulty{Store: fake, Before: func(ctx context.Context, method string) error {
		if f := r.fault.Load(); f != nil {
			return (*f)(ctx, method)
		}
		return nil
	}}
	cfg := Config{StreamName: "st", IdleTime: 200 * time.Millisecond, MaxReadRate: 5, CheckpointInterval: time.Second, ShutdownGrace: 10 * time.Second, ShardSyncInterval: 10 * time.Second, Lease: defaultLease}
	cfg.Lease.WorkerID = name
	if tweak != nil {
		tweak(&cfg)
	}
	w, err := New(kin, r.store, factory, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- w.Run(ctx) }()
	return r
}

func (r *running) setFault(f func(ctx context.Context, method string) error) {
	if f == nil {
		r.fault.Store(nil)
		return
	}
	r.fault.Store(&f)
}

// stop cancels the worker and returns how long Run took to return, and
// its error.
func (r *running) stop() (time.Duration, error) {
	t0 := time.Now()
	r.cancel()
	err := <-r.done
	return time.Since(t0), err
}

func hang(ctx context.Context, _ string) error { return leasetest.Hang(ctx) }

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never within %s: %s", within, what)
}

func createLeases(t *testing.T, fake *leasetest.Fake, start string, shards ...string) {
	t.Helper()
	for _, s := range shards {
		if err := fake.Create(context.Background(), lease.Lease{ShardID: s, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: start}}}); err != nil {
			t.Fatal(err)
		}
	}
}

func held(r *running) int { return len(r.w.coord.Held()) }

// TestNoWriteByTheOldOwnerAfterTheNewOwnerBegan is promise 1 end to end
// (defect 1's second half): worker A's lease table stops answering while
// its sink is slow, so a Process call straddles the fence. The fence
// reaches the sink through the lease context: A writes nothing at or
// after its fence time, B writes only after it, nothing is lost.
func TestNoWriteByTheOldOwnerAfterTheNewOwnerBegan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil, "s1": nil}}
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, "s0", "s1")
		log := newSinkLog()
		pctx, stopProducing := context.WithCancel(context.Background())
		var pwg sync.WaitGroup
		kin.produce(pctx, &pwg, 100*time.Millisecond, "s0", "s1")
		// A checkpoints only once a minute, so nothing but the lease context
		// stops its writes between the fence and its next table call.
		a := startWorker(t, "A", kin, fake, log.factory("A", procOpts{perRecord: 500 * time.Millisecond}), func(c *Config) { c.CheckpointInterval = time.Minute })
		eventually(t, 5*time.Second, "A holds both", func() bool { return held(a) == 2 })
		b := startWorker(t, "B", kin, fake, log.factory("B", procOpts{}), nil)
		eventually(t, 10*time.Second, "A and B share", func() bool { return held(a) == 1 && held(b) == 1 })
		time.Sleep(3 * time.Second)
		a.setFault(hang)
		eventually(t, 30*time.Second, "B holds both", func() bool { return held(b) == 2 })
		time.Sleep(5 * time.Second)
		stopProducing()
		pwg.Wait()
		for _, s := range []string{"s0", "s1"} {
			eventually(t, 30*time.Second, "B caught up on "+s, func() bool { d, _ := log.seen(s); return len(d) == kin.count(s) })
		}
		log.overlap(t)
		if took, err := a.stop(); took > 10*time.Second {
			t.Errorf("the zombie took %s to stop (%v), grace is 10s", took, err)
		}
		if _, err := b.stop(); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"s0", "s1"} {
			if rs := log.closeReasons(s); !containsString(rs, "A:lease lost") && !containsString(rs, "A:handoff") {
				t.Errorf("shard %s: A's processors closed with %v", s, rs)
			}
		}
	})
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestShutdownWithinGraceInEveryState is defect 8: after the hard stop the
// worker waited without limit, and the final release and the worker-item
// delete each got up to a lease duration. With the table hung and a sink
// whose flush never returns, Run now returns within the grace period.
func TestShutdownWithinGraceInEveryState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  procOpts
		fault func(ctx context.Context, method string) error
	}{
		{"hung table", procOpts{}, hang},
		{"hung table and a flush that never returns", procOpts{flushHangs: true}, hang},
		{"failing table", procOpts{}, func(context.Context, string) error { return errors.New("InternalServerError (injected)") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil, "s1": nil}}
				fake := leasetest.NewFake()
				createLeases(t, fake, checkpoint.TrimHorizon, "s0", "s1")
				kin.appendRecords("s0", 5)
				log := newSinkLog()
				a := startWorker(t, "A", kin, fake, log.factory("A", tc.opts), func(c *Config) { c.ShutdownGrace = 5 * time.Second })
				eventually(t, 5*time.Second, "A holds both", func() bool { return held(a) == 2 })
				a.setFault(tc.fault)
				took, _ := a.stop()
				if took > 5*time.Second {
					t.Errorf("shutdown took %s, grace is 5s", took)
				}
			})
		})
	}
}

// TestStopDuringIteratorRetriesIsNotAHotLoop is defect 5: a pending stop
// made every backoff sleep return at once, so failing GetShardIterator
// calls were retried with no wait (over a million in a 2 s shutdown).
func TestStopDuringIteratorRetriesIsNotAHotLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil}}
		var calls atomic.Int64
		kin.onIterator = func(string) error {
			calls.Add(1)
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, "s0")
		a := startWorker(t, "A", kin, fake, newSinkLog().factory("A", procOpts{}), nil)
		eventually(t, 5*time.Second, "A retries the iterator", func() bool { return calls.Load() >= 3 })
		before := calls.Load()
		took, err := a.stop()
		if err != nil {
			t.Fatal(err)
		}
		if n := calls.Load() - before; n > 2 {
			t.Errorf("%d GetShardIterator calls during shutdown, want at most 2", n)
		}
		if took > time.Second {
			t.Errorf("shutdown took %s with a consumer stuck on iterator retries", took)
		}
		l, _ := fake.Get(context.Background(), "s0")
		if l.Owner != "" {
			t.Errorf("lease not released: %+v", l)
		}
	})
}

// TestTrimmedShardIsEndedAndItsChildStarts is defect 4: ResourceNotFound
// for a shard trimmed away dropped its lease, the next pass took it again
// (about one write a second, forever), and its child never started.
func TestTrimmedShardIsEndedAndItsChildStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{
			records:  map[string][]types.Record{"s0": nil, "s1": nil},
			closed:   map[string][]types.ChildShard{"s0": {{ShardId: aws.String("s1"), ParentShards: []string{"s0"}}}},
			unlisted: map[string]bool{"s0": true},
		}
		kin.onIterator = func(shard string) error {
			if shard == "s0" {
				return &types.ResourceNotFoundException{Message: aws.String("Shard s0 in stream st under account 1 does not exist")}
			}
			return nil
		}
		kin.appendRecords("s1", 3)
		fake := leasetest.NewFake()
		// s0 was being read when it aged out; its child's lease names it.
		if err := fake.Create(context.Background(), lease.Lease{ShardID: "s0", Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "77"}}}); err != nil {
			t.Fatal(err)
		}
		if err := fake.Create(context.Background(), lease.Lease{ShardID: "s1", Parents: []string{"s0"}, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
		log := newSinkLog()
		a := startWorker(t, "A", kin, fake, log.factory("A", procOpts{}), nil)
		eventually(t, 10*time.Second, "the child is read", func() bool { d, _ := log.seen("s1"); return len(d) == 3 })
		time.Sleep(10 * time.Second)
		if n := fake.Calls()["Take"]; n > 3 {
			t.Errorf("%d takes: the trimmed shard's lease is being taken in a loop", n)
		}
		if rs := log.closeReasons("s0"); fmt.Sprint(rs) != "[A:shard end]" {
			t.Errorf("trimmed shard's processor closed with %v, want shard end", rs)
		}
		if _, err := a.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDeletedStreamStopsTheWorker is defect 4's other half: a deleted
// stream stops the worker with a clear error instead of a silent loop.
func TestDeletedStreamStopsTheWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil}}
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, "s0")
		var deleted atomic.Bool
		kin.onList = func() error {
			if deleted.Load() {
				return &types.ResourceNotFoundException{Message: aws.String("Stream st under account 1 not found.")}
			}
			return nil
		}
		kin.onRecords = func(string) error {
			if deleted.Load() {
				return &types.ResourceNotFoundException{Message: aws.String("Stream st under account 1 not found.")}
			}
			return nil
		}
		a := startWorker(t, "A", kin, fake, newSinkLog().factory("A", procOpts{}), nil)
		eventually(t, 5*time.Second, "A holds the shard", func() bool { return held(a) == 1 })
		deleted.Store(true)
		select {
		case err := <-a.done:
			if !errors.Is(err, ErrStreamDeleted) || !strings.Contains(err.Error(), "st") {
				t.Fatalf("Run returned %v, want ErrStreamDeleted naming the stream", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the worker kept running on a deleted stream")
		}
	})
}

// TestLatestIsFixedAtTheFirstTake is defect 6: with LATEST, a worker that
// read records but crashed before its first durable checkpoint left
// LATEST in the table, and the next owner skipped those records.
func TestLatestIsFixedAtTheFirstTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil}}
		kin.appendRecords("s0", 2) // before the fleet starts: LATEST skips these
		time.Sleep(time.Minute)
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.Latest, "s0")
		log := newSinkLog()
		latest := func(c *Config) { c.InitialPosition = checkpoint.Position{Sequence: checkpoint.Latest} }
		a := startWorker(t, "A", kin, fake, log.factory("A", procOpts{noDurable: true}), latest)
		eventually(t, 5*time.Second, "A holds the shard", func() bool { return held(a) == 1 })
		kin.appendRecords("s0", 5)
		eventually(t, 5*time.Second, "A read the new records", func() bool { d, _ := log.seen("s0"); return len(d) == 5 })
		// A's sink never made them durable, and A is cut off: a crash as
		// far as the fleet can tell.
		a.setFault(func(context.Context, string) error { return errors.New("partitioned") })
		b := startWorker(t, "B", kin, fake, log.factory("B", procOpts{}), latest)
		eventually(t, time.Minute, "B takes over", func() bool { return held(b) == 1 })
		eventually(t, 10*time.Second, "B reads what A read", func() bool {
			log.mu.Lock()
			defer log.mu.Unlock()
			n := 0
			for _, w := range log.writes["s0"] {
				if w.worker == "B" {
					n++
				}
			}
			return n == 5
		})
		d, _ := log.seen("s0")
		if len(d) != 5 {
			t.Errorf("records written: %d distinct, want the 5 that arrived after the first take (and not the 2 before)", len(d))
		}
		a.stop()
		b.stop()
	})
}

// TestPermanentReadErrorsMakeTheWorkerNotReady is defect 9: access denied
// or a disabled KMS key was retried forever at the transient backoff while
// /readyz stayed green.
func TestPermanentReadErrorsMakeTheWorkerNotReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil}}
		var denied atomic.Bool
		var calls atomic.Int64
		kin.onRecords = func(string) error {
			calls.Add(1)
			if denied.Load() {
				return &smithy.GenericAPIError{Code: "KMSDisabledException", Message: "the KMS key is disabled"}
			}
			return nil
		}
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, "s0")
		a := startWorker(t, "A", kin, fake, newSinkLog().factory("A", procOpts{}), nil)
		eventually(t, 5*time.Second, "A ready", func() bool { return held(a) == 1 && a.w.Ready() == nil })
		denied.Store(true)
		c0 := calls.Load()
		time.Sleep(2 * time.Minute)
		if err := a.w.Ready(); err == nil || !strings.Contains(err.Error(), "s0: KMSDisabledException") {
			t.Errorf("Ready() = %v, want the stalled shard and its error", err)
		}
		if n := calls.Load() - c0; n > 15 {
			t.Errorf("%d GetRecords calls in 2 minutes of a permanent error, want backing off to one per 15-30 s", n)
		}
		if s := a.w.Stats(); s.Stalled != 1 {
			t.Errorf("stats report %d stalled shards", s.Stalled)
		}
		denied.Store(false)
		eventually(t, time.Minute, "ready again", func() bool { return a.w.Ready() == nil })
		a.stop()
	})
}

// TestHandoffLostAndStopPaths checks the three ways a consumer ends with
// the reason its processor is told: a planned handoff (no record twice),
// a lease taken away (nothing written after), and a graceful stop.
func TestHandoffLostAndStopPaths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": nil, "s1": nil}}
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, "s0", "s1")
		log := newSinkLog()
		pctx, stopProducing := context.WithCancel(context.Background())
		var pwg sync.WaitGroup
		kin.produce(pctx, &pwg, 50*time.Millisecond, "s0", "s1")
		a := startWorker(t, "A", kin, fake, log.factory("A", procOpts{}), nil)
		eventually(t, 5*time.Second, "A holds both", func() bool { return held(a) == 2 })
		time.Sleep(2 * time.Second)
		// Handoff: B joins and asks for one.
		b := startWorker(t, "B", kin, fake, log.factory("B", procOpts{}), nil)
		eventually(t, 10*time.Second, "one shard handed to B", func() bool { return held(a) == 1 && held(b) == 1 })
		var moved string
		for s := range b.w.coord.Held() {
			moved = s
		}
		time.Sleep(2 * time.Second)
		if rs := log.closeReasons(moved); fmt.Sprint(rs) != "[A:handoff]" {
			t.Errorf("handed-off shard's processor closed with %v", rs)
		}
		if _, dups := log.seen(moved); dups != 0 {
			t.Errorf("the planned move wrote %d records twice", dups)
		}
		// Lost: someone takes A's other lease behind its back.
		var kept string
		for s := range a.w.coord.Held() {
			kept = s
		}
		l, _ := fake.Get(context.Background(), kept)
		if _, err := fake.Take(context.Background(), kept, "intruder~1", l.Epoch); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "A notices", func() bool { return held(a) == 0 })
		lostAt := time.Now()
		time.Sleep(2 * time.Second)
		log.mu.Lock()
		for _, w := range log.writes[kept] {
			if w.worker == "A" && w.at.After(lostAt) {
				t.Errorf("A wrote %s after losing the lease", w.seq)
			}
		}
		log.mu.Unlock()
		if rs := log.closeReasons(kept); fmt.Sprint(rs) != "[A:lease lost]" {
			t.Errorf("lost shard's processor closed with %v", rs)
		}
		// Stop: B releases with its last checkpoint.
		stopProducing()
		pwg.Wait()
		if _, err := b.stop(); err != nil {
			t.Fatal(err)
		}
		if rs := log.closeReasons(moved); fmt.Sprint(rs) != "[A:handoff B:shutdown]" {
			t.Errorf("after B's stop: %v", rs)
		}
		rel, _ := fake.Get(context.Background(), moved)
		d, _ := log.seen(moved)
		var seqs []string
		for s := range d {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool {
			return len(seqs[i]) < len(seqs[j]) || len(seqs[i]) == len(seqs[j]) && seqs[i] < seqs[j]
		})
		if rel.Owner != "" || rel.Checkpoint.Position.Sequence != seqs[len(seqs)-1] {
			t.Errorf("B released %+v, want unowned at the last record written, %s", rel, seqs[len(seqs)-1])
		}
		a.stop()
	})
}

// TestRunStopsCleanlyWhenTheFirstShardSyncFails covers the data race on
// the coordinator's start time (written by Run, read by the stop
// heartbeat when the first shard sync fails); run with -race.
func TestRunStopsCleanlyWhenTheFirstShardSyncFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{records: map[string][]types.Record{}}
		kin.onList = func() error {
			return &types.ResourceNotFoundException{Message: aws.String("Stream st under account 1 not found.")}
		}
		a := startWorker(t, "A", kin, leasetest.NewFake(), newSinkLog().factory("A", procOpts{}), nil)
		select {
		case err := <-a.done:
			if err == nil || !strings.Contains(err.Error(), "list shards of st") {
				t.Fatalf("Run returned %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Run did not return")
		}
	})
}

// TestProcessorCloseReason: ShardProcessor.Close is called once per
// processor, with the reason the consumer ended, in each way it can end.
func TestProcessorCloseReason(t *testing.T) {
	// start runs A on shards with records arriving every 50 ms (a closed
	// shard gets its fixed records instead), until A wrote to all.
	start := func(t *testing.T, kin *fakeKinesis, o procOpts, shards ...string) (*leasetest.Fake, *sinkLog, *running, func()) {
		fake := leasetest.NewFake()
		createLeases(t, fake, checkpoint.TrimHorizon, shards...)
		log := newSinkLog()
		pctx, stopProducing := context.WithCancel(context.Background())
		var pwg sync.WaitGroup
		var open []string
		for _, s := range shards {
			if kin.closed[s] == nil {
				open = append(open, s)
			}
		}
		kin.produce(pctx, &pwg, 50*time.Millisecond, open...)
		a := startWorker(t, "A", kin, fake, log.factory("A", o), nil)
		eventually(t, 10*time.Second, "A writes to every shard", func() bool {
			for _, s := range shards {
				if d, _ := log.seen(s); len(d) == 0 {
					return false
				}
			}
			return true
		})
		return fake, log, a, func() { stopProducing(); pwg.Wait() }
	}
	newKinesis := func(shards ...string) *fakeKinesis {
		k := &fakeKinesis{records: map[string][]types.Record{}, closed: map[string][]types.ChildShard{}}
		for _, s := range shards {
			k.records[s] = nil
		}
		return k
	}
	wantCloses := func(t *testing.T, log *sinkLog, shard, want string) {
		t.Helper()
		if got := fmt.Sprint(log.closeReasons(shard)); got != want {
			t.Errorf("%s's processor closed with %s, want %s", shard, got, want)
		}
	}

	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake, log, a, stopProducing := start(t, newKinesis("s0"), procOpts{}, "s0")
			stopProducing()
			if _, err := a.stop(); err != nil {
				t.Fatal(err)
			}
			wantCloses(t, log, "s0", "[A:shutdown]")
			if l, _ := fake.Get(context.Background(), "s0"); l.Owner != "" {
				t.Errorf("after shutdown the lease is %s's, want released", l.Owner)
			}
		})
	})
	t.Run("handoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			kin := newKinesis("s0", "s1")
			fake, log, a, stopProducing := start(t, kin, procOpts{}, "s0", "s1")
			defer stopProducing()
			b := startWorker(t, "B", kin, fake, log.factory("B", procOpts{}), nil)
			eventually(t, 30*time.Second, "one shard handed to B", func() bool { return held(a) == 1 && held(b) == 1 })
			time.Sleep(time.Second)
			for moved := range b.w.coord.Held() {
				wantCloses(t, log, moved, "[A:handoff]")
			}
			for kept := range a.w.coord.Held() {
				wantCloses(t, log, kept, "[]")
			}
			b.stop()
			a.stop()
		})
	})
	t.Run("shard end", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			kin := newKinesis("s0")
			kin.closed["s0"] = []types.ChildShard{}
			kin.appendRecords("s0", 5)
			fake, log, a, stopProducing := start(t, kin, procOpts{}, "s0")
			defer stopProducing()
			eventually(t, 10*time.Second, "s0 closed", func() bool { return len(log.closeReasons("s0")) > 0 })
			wantCloses(t, log, "s0", "[A:shard end]")
			if l, _ := fake.Get(context.Background(), "s0"); !l.Ended() {
				t.Errorf("lease after shard end: %+v, want SHARD_END", l)
			}
			a.stop()
		})
	})
	t.Run("lease lost", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake, log, a, stopProducing := start(t, newKinesis("s0"), procOpts{}, "s0")
			defer stopProducing()
			l, _ := fake.Get(context.Background(), "s0")
			if _, err := fake.Take(context.Background(), "s0", "intruder~1", l.Epoch); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "A notices", func() bool { return len(log.closeReasons("s0")) > 0 })
			wantCloses(t, log, "s0", "[A:lease lost]")
			a.stop()
		})
	})
	t.Run("lease lost: fenced", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, log, a, stopProducing := start(t, newKinesis("s0"), procOpts{}, "s0")
			defer stopProducing()
			a.setFault(hang) // the table stops answering: A fences itself
			eventually(t, 30*time.Second, "A fences", func() bool { return len(log.closeReasons("s0")) > 0 })
			wantCloses(t, log, "s0", "[A:lease lost]")
			a.setFault(nil)
			a.stop()
		})
	})
	t.Run("failed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, log, a, stopProducing := start(t, newKinesis("s0"), procOpts{failAt: 2}, "s0")
			defer stopProducing()
			eventually(t, 10*time.Second, "the processor fails", func() bool { return len(log.closeReasons("s0")) > 0 })
			wantCloses(t, log, "s0", "[A:failed]")
			a.stop()
		})
	})
}
