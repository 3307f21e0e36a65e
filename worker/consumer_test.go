package worker

import (
	"context"
	"fmt"
	"os"
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
	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// fakeKinesis serves one closed shard "s0" (with child "s1") and one open
// shard from a fixed record list; iterators encode the next index. It can
// inject an expired iterator and throttling once.
type fakeKinesis struct {
	mu          sync.Mutex
	records     map[string][]types.Record
	closed      map[string][]types.ChildShard
	expireOnce  bool
	throttleOne bool
	iterCalls   []string
	// Optional faults, consulted with mu held: a non-nil error is the
	// call's answer.
	onList     func() error
	onIterator func(shard string) error
	onRecords  func(shard string) error
	unlisted   map[string]bool // shards ListShards leaves out (trimmed)
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onList != nil {
		if err := f.onList(); err != nil {
			return nil, err
		}
	}
	parent := map[string]string{}
	for p, children := range f.closed {
		for _, c := range children {
			parent[aws.ToString(c.ShardId)] = p
		}
	}
	var out kinesis.ListShardsOutput
	for id := range f.records {
		if f.unlisted[id] {
			continue
		}
		sh := types.Shard{ShardId: aws.String(id)}
		if p, ok := parent[id]; ok {
			sh.ParentShardId = aws.String(p)
		}
		out.Shards = append(out.Shards, sh)
	}
	return &out, nil
}

func (f *fakeKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	shard := aws.ToString(in.ShardId)
	f.iterCalls = append(f.iterCalls, string(in.ShardIteratorType)+":"+aws.ToString(in.StartingSequenceNumber))
	if f.onIterator != nil {
		if err := f.onIterator(shard); err != nil {
			return nil, err
		}
	}
	idx := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeAtTimestamp:
		idx = len(f.records[shard])
		for i, r := range f.records[shard] {
			if !aws.ToTime(r.ApproximateArrivalTimestamp).Before(aws.ToTime(in.Timestamp)) {
				idx = i
				break
			}
		}
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(f.records[shard])
	case types.ShardIteratorTypeAtSequenceNumber:
		for i, r := range f.records[shard] {
			if aws.ToString(r.SequenceNumber) == aws.ToString(in.StartingSequenceNumber) {
				idx = i
			}
		}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(shard + "|" + strconv.Itoa(idx))}, nil
}

func (f *fakeKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.throttleOne {
		f.throttleOne = false
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	}
	if f.onRecords != nil {
		if err := f.onRecords(strings.SplitN(aws.ToString(in.ShardIterator), "|", 2)[0]); err != nil {
			return nil, err
		}
	}
	var shard string
	var idx int
	fmt.Sscanf(aws.ToString(in.ShardIterator), "%s", &shard)
	for i := len(shard) - 1; i >= 0; i-- {
		if shard[i] == '|' {
			idx, _ = strconv.Atoi(shard[i+1:])
			shard = shard[:i]
			break
		}
	}
	if f.expireOnce && idx > 0 {
		f.expireOnce = false
		return nil, &types.ExpiredIteratorException{Message: aws.String("expired")}
	}
	recs := f.records[shard]
	end := min(idx+2, len(recs)) // two records per call, to exercise iteration
	// Behind by a second per record left: the consumer reads on at once.
	out := &kinesis.GetRecordsOutput{Records: recs[idx:end], MillisBehindLatest: aws.Int64(int64(len(recs)-end) * 1000)}
	if end == len(recs) && f.closed[shard] != nil {
		out.ChildShards = f.closed[shard]
		return out, nil // NextShardIterator nil: shard end
	}
	out.NextShardIterator = aws.String(shard + "|" + strconv.Itoa(end))
	return out, nil
}

// collector is a synchronous ShardProcessor that records what it got.
type collector struct {
	mu    sync.Mutex
	got   map[string][]string // shard -> "seq/sub:data"
	order []string            // shard of every record, in processing order
}

func (c *collector) factory(ctx context.Context, s Shard) (ShardProcessor, error) {
	return &collectorShard{c: c, shard: s.ShardID}, nil
}

type collectorShard struct {
	c     *collector
	shard string
	pos   checkpoint.Position
}

func (s *collectorShard) Process(ctx context.Context, recs []Record) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, r := range recs {
		s.c.got[s.shard] = append(s.c.got[s.shard], fmt.Sprintf("%s/%d:%s", r.SequenceNumber, r.SubSequenceNumber, r.Data))
		s.c.order = append(s.c.order, s.shard)
	}
	s.pos = recs[len(recs)-1].Position()
	return nil
}
func (s *collectorShard) Flush(ctx context.Context) (checkpoint.Checkpoint, error) {
	return checkpoint.Checkpoint{Position: s.pos}, nil
}
func (s *collectorShard) Durable() checkpoint.Checkpoint {
	return checkpoint.Checkpoint{Position: s.pos}
}
func (s *collectorShard) Close(CloseReason) error { return nil }

func rec(seq int, data []byte) types.Record {
	return types.Record{SequenceNumber: aws.String(strconv.Itoa(seq)), PartitionKey: aws.String("pk"), Data: data, ApproximateArrivalTimestamp: aws.Time(time.Unix(0, 0))}
}

func aggregate(t *testing.T, n int, prefix string) []byte {
	t.Helper()
	a, err := kpl.NewAggregator(kpl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := a.Add(fmt.Sprintf("k%d", i), "", []byte(fmt.Sprintf("%s%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
	r, ok := a.Drain()
	if !ok {
		t.Fatal("empty aggregate")
	}
	return r.Data
}

func newTestWorker(t *testing.T, kin KinesisAPI, store lease.Store, c *collector) *Worker {
	t.Helper()
	w, err := New(kin, store, c.factory, Config{
		StreamName: "st", IdleTime: 200 * time.Millisecond, MaxReadRate: 5, CheckpointInterval: 10 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		Lease: lease.Config{WorkerID: "w", Duration: time.Second, SafetyMargin: 300 * time.Millisecond, RenewInterval: 200 * time.Millisecond, TakeInterval: 50 * time.Millisecond},
	}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func testLog() *zap.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

func TestConsumerResumesInsideAnAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agg := aggregate(t, 5, "a")
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": {rec(100, []byte("plain")), rec(101, agg), rec(102, []byte("after"))}}}
		store := leasetest.NewFake()
		// A previous owner checkpointed sub-record 2 of the aggregate at 101.
		cp := checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "101", Sub: 2}}
		if err := store.Create(context.Background(), lease.Lease{ShardID: "s0", Checkpoint: cp}); err != nil {
			t.Fatal(err)
		}
		c := &collector{got: map[string][]string{}}
		w := newTestWorker(t, kin, store, c)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got["s0"]) >= 3 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := "[101/3:a3 101/4:a4 102/0:after]"
		if got := fmt.Sprint(c.got["s0"]); got != want {
			t.Fatalf("resumed with %s, want %s (exactly after sub-record 2)", got, want)
		}
		if kin.iterCalls[0] != "AT_SEQUENCE_NUMBER:101" {
			t.Fatalf("iterator %s, want AT_SEQUENCE_NUMBER:101", kin.iterCalls[0])
		}
		l, _ := store.Get(context.Background(), "s0")
		if l.Owner != "" || l.Checkpoint.Position != (checkpoint.Position{Sequence: "102"}) {
			t.Fatalf("after graceful stop the lease is %+v; want released at 102", l)
		}
	})
}

func TestConsumerSurvivesExpiredIteratorAndThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var recs []types.Record
		for i := range 7 {
			recs = append(recs, rec(200+i, []byte(strconv.Itoa(i))))
		}
		kin := &fakeKinesis{records: map[string][]types.Record{"s0": recs}, expireOnce: true, throttleOne: true}
		store := leasetest.NewFake()
		if err := store.Create(context.Background(), lease.Lease{ShardID: "s0", Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
		c := &collector{got: map[string][]string{}}
		w := newTestWorker(t, kin, store, c)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got["s0"]) >= 7 })
		cancel()
		<-done
		if len(c.got["s0"]) != 7 {
			t.Fatalf("got %v: every record exactly once across the expired iterator", c.got["s0"])
		}
		if len(kin.iterCalls) < 2 || kin.iterCalls[1] != "AT_SEQUENCE_NUMBER:201" {
			t.Fatalf("iterator calls %v: want a re-acquire at the last processed record", kin.iterCalls)
		}
	})
}

func TestShardEndCreatesChildrenAndTheyStartAfterTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &fakeKinesis{
			records: map[string][]types.Record{
				"s0": {rec(1, []byte("p1")), rec(2, []byte("p2")), rec(3, []byte("p3"))},
				"s1": {rec(10, []byte("c1"))},
			},
			closed: map[string][]types.ChildShard{"s0": {{ShardId: aws.String("s1"), ParentShards: []string{"s0"}}}},
		}
		store := leasetest.NewFake()
		if err := store.Create(context.Background(), lease.Lease{ShardID: "s0", Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
			t.Fatal(err)
		}
		c := &collector{got: map[string][]string{}}
		w := newTestWorker(t, kin, store, c)
		// Shard sync creates s1 gated on s0; it must not start before s0 ends.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got["s1"]) >= 1 })
		cancel()
		<-done
		parent, _ := store.Get(context.Background(), "s0")
		child, err := store.Get(context.Background(), "s1")
		if err != nil {
			t.Fatal(err)
		}
		// The parent's lease is deleted once its child started (ended leases
		// are not kept forever).
		if parent.ShardID != "" || fmt.Sprint(child.Parents) != "[s0]" {
			t.Fatalf("parent %+v child %+v", parent, child)
		}
		if fmt.Sprint(c.got["s0"]) != "[1/0:p1 2/0:p2 3/0:p3]" || fmt.Sprint(c.got["s1"]) != "[10/0:c1]" {
			t.Fatalf("got %v", c.got)
		}
		if c.order[0] != "s0" || c.order[len(c.order)-1] != "s1" {
			t.Fatalf("processing order %v: the child must come after the whole parent", c.order)
		}
	})
}

// waitFor polls cond for 10 s of the synctest bubble's virtual time.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 10s")
}

func TestInitialPositionOnlyAppliesToShardsWithoutCheckpoint(t *testing.T) {
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		start checkpoint.Position
		want  string
	}{
		{"trim horizon", checkpoint.Position{Sequence: checkpoint.TrimHorizon}, "TRIM_HORIZON:"},
		{"latest (fixed as a timestamp at the first take)", checkpoint.Position{Sequence: checkpoint.Latest}, "AT_TIMESTAMP:"},
		{"at timestamp", checkpoint.AtTimestamp(ts), "AT_TIMESTAMP:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kin := &fakeKinesis{records: map[string][]types.Record{"s0": {rec(1, []byte("x"))}}}
				store := leasetest.NewFake()
				c := &collector{got: map[string][]string{}}
				w, err := New(kin, store, c.factory, Config{
					StreamName: "st", InitialPosition: tc.start, IdleTime: 200 * time.Millisecond, MaxReadRate: 5, ShutdownGrace: 5 * time.Second,
					Lease: lease.Config{WorkerID: "w", Duration: time.Second, SafetyMargin: 300 * time.Millisecond, RenewInterval: 200 * time.Millisecond, TakeInterval: 50 * time.Millisecond},
				}, zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- w.Run(ctx) }()
				waitFor(t, func() bool { kin.mu.Lock(); defer kin.mu.Unlock(); return len(kin.iterCalls) > 0 })
				cancel()
				<-done
				if kin.iterCalls[0] != tc.want {
					t.Fatalf("first iterator %s, want %s", kin.iterCalls[0], tc.want)
				}
				l, _ := store.Get(context.Background(), "s0")
				if tc.start.Sequence == checkpoint.TrimHorizon && l.Checkpoint.Position.Sequence != "1" {
					t.Fatalf("checkpoint after reading from TRIM_HORIZON: %v", l.Checkpoint.Position)
				}
			})
		})
	}
}

func TestConfigValidation(t *testing.T) {
	id := lease.Config{WorkerID: "w"}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Lease: id}, "stream name must not be empty"},
		{Config{StreamName: "s", Lease: id, MaxRecords: 20000}, "worker.max_records: 20000 is out of range"},
		{Config{StreamName: "s", Lease: id, InitialPosition: checkpoint.Position{Sequence: "OLDEST"}}, "OLDEST"},
		{Config{StreamName: "s", Lease: id, CheckpointInterval: -time.Second}, "checkpoint interval"},
		{Config{StreamName: "s", Lease: id, ShardSyncInterval: -time.Second}, "shard sync interval"},
		// The lease settings are the worker's too: one Validate for all.
		{Config{StreamName: "s"}, "lease: worker id must not be empty"},
		{Config{StreamName: "s", Lease: lease.Config{WorkerID: "w", SafetyMargin: time.Minute}}, "lease.safety_margin: 1m0s must be above 0"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.c, err, tc.want)
		}
	}
	// Zero fields are their defaults, before New applies them too.
	if err := (Config{StreamName: "s", Lease: id}).Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// TestNewNamesEveryNilDependency: a nil Kinesis client, store, factory or
// logger is an error from New that names it, not a panic once Run starts.
func TestNewNamesEveryNilDependency(t *testing.T) {
	cfg := Config{StreamName: "s", Lease: lease.Config{WorkerID: "w"}}
	kin := &fakeKinesis{}
	fact := (&collector{}).factory
	for _, tc := range []struct {
		name    string
		kin     KinesisAPI
		store   lease.Store
		factory ProcessorFactory
		log     *zap.Logger
		want    []string
	}{
		{"kinesis", nil, leasetest.NewFake(), fact, zap.NewNop(), []string{"Kinesis client is nil"}},
		{"store", kin, nil, fact, zap.NewNop(), []string{"lease store is nil"}},
		{"dynamo store without a client", kin, new(lease.DynamoStore), fact, zap.NewNop(), []string{"DynamoDB client of the lease store is nil"}},
		{"factory", kin, leasetest.NewFake(), nil, zap.NewNop(), []string{"processor factory is nil"}},
		{"logger", kin, leasetest.NewFake(), fact, nil, []string{"logger is nil"}},
		{"all at once", nil, nil, nil, nil, []string{"Kinesis client", "lease store", "processor factory", "logger"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(tc.kin, tc.store, tc.factory, cfg, tc.log)
			if err == nil || w != nil {
				t.Fatalf("New = %v, %v; want an error", w, err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if _, err := New(kin, leasetest.NewFake(), fact, cfg, zap.NewNop()); err != nil {
		t.Fatalf("every dependency set: %v", err)
	}
}
