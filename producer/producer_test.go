package producer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

func TestPutValidation(t *testing.T) {
	k := producertest.NewKinesis(1)
	p, _ := start(t, k)
	tests := []struct {
		name    string
		rec     producer.Record
		wantErr error
	}{
		{"ok", producer.Record{PartitionKey: "k", Data: []byte("x")}, nil},
		{"empty data is fine", producer.Record{PartitionKey: "k"}, nil},
		{"largest record", producer.Record{PartitionKey: "kk", Data: make([]byte, producer.MaxRecordBytes-2)}, nil},
		{"one byte over", producer.Record{PartitionKey: "kk", Data: make([]byte, producer.MaxRecordBytes-1)}, producer.ErrInvalidRecord},
		{"empty key", producer.Record{Data: []byte("x")}, producer.ErrInvalidRecord},
		{"256 characters", producer.Record{PartitionKey: strings.Repeat("ü", 256)}, nil},
		{"257 characters", producer.Record{PartitionKey: strings.Repeat("ü", 257)}, producer.ErrInvalidRecord},
		{"bad hash key", producer.Record{PartitionKey: "k", ExplicitHashKey: "0x10"}, producer.ErrInvalidRecord},
		{"hash key", producer.Record{PartitionKey: "k", ExplicitHashKey: "12345"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.PutRecord(context.Background(), tt.rec)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("PutRecord = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if got := p.Stats().RecordsPut; got != 5 {
		t.Fatalf("RecordsPut = %d, want 5", got)
	}
}

func TestDeliversEveryRecordOnce(t *testing.T) {
	tests := []struct {
		name     string
		shards   int
		opts     []producer.Option
		listErr  error
		ordered  bool
		wantAggs bool
		keys     int
	}{
		{name: "plain", shards: 4, ordered: true},
		{name: "plain one in flight", shards: 4, opts: []producer.Option{producer.WithMaxInFlight(1)}, ordered: true},
		{name: "aggregated", shards: 4, opts: []producer.Option{producer.WithAggregation(true)}, ordered: true, wantAggs: true},
		{name: "aggregated strict", shards: 2, opts: []producer.Option{producer.WithAggregation(true), producer.WithStrictOrdering(true)}, ordered: true, wantAggs: true},
		// Without a shard map only runs of one key are aggregated.
		{name: "aggregated without shard map", shards: 3, listErr: errors.New("AccessDenied"), opts: []producer.Option{producer.WithAggregation(true)}, ordered: true, wantAggs: true, keys: 1},
		{name: "aggregated without shard map, interleaved keys", shards: 3, listErr: errors.New("AccessDenied"), opts: []producer.Option{producer.WithAggregation(true)}, ordered: true, wantAggs: false},
		{name: "shard map off", shards: 5, opts: []producer.Option{producer.WithShardMap(false)}, ordered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(tt.shards)
			k.ListShardsError = tt.listErr
			var res results
			p, clk := start(t, k, append(tt.opts, producer.WithResultHandler(res.handle))...)
			const n = 3000
			keys := 40
			if tt.keys != 0 {
				keys = tt.keys
			}
			putMany(t, p, n, keys)
			if err := closeDriven(t, p, clk); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkWritten(t, k, n, keys, tt.ordered)
			all := res.get()
			if len(all) != n {
				t.Fatalf("%d results, want %d", len(all), n)
			}
			for _, r := range all {
				if r.Err != nil || r.ShardID == "" || r.SequenceNumber == "" || r.Attempts != 1 {
					t.Fatalf("result %+v", r)
				}
				if want := k.ShardFor(kpl.PartitionKeyHash(r.Record.PartitionKey)); r.ShardID != want {
					t.Fatalf("result says shard %s, key maps to %s", r.ShardID, want)
				}
			}
			s := p.Stats()
			if s.RecordsSent != n || s.RecordsFailed != 0 || s.CallErrors != 0 || s.BufferedRecords != 0 {
				t.Fatalf("stats %+v", s)
			}
			if aggs := s.KinesisRecords < n; aggs != tt.wantAggs {
				t.Fatalf("KinesisRecords %d for %d records; aggregation expected: %v", s.KinesisRecords, n, tt.wantAggs)
			}
		})
	}
}

// TestAggregatesStayOnOneShard pins the Java KCL compatibility rule: every
// sub-record of an aggregate must hash into the shard the aggregate lands
// on, or the KCL drops the whole aggregate.
func TestAggregatesStayOnOneShard(t *testing.T) {
	k := producertest.NewKinesis(4)
	p, clk := start(t, k, producer.WithAggregation(true))
	putMany(t, p, 5000, 500)
	if err := closeDriven(t, p, clk); err != nil {
		t.Fatal(err)
	}
	recs, err := k.UserRecords()
	if err != nil {
		t.Fatal(err)
	}
	aggregated := 0
	for _, r := range recs {
		h, _ := kpl.EffectiveHashKey(r.PartitionKey, r.ExplicitHashKey)
		if got := k.ShardFor(h); got != r.ShardID {
			t.Fatalf("sub-record %s maps to %s but was written to %s", r.Data, got, r.ShardID)
		}
		if r.Aggregated {
			aggregated++
		}
	}
	if aggregated < 4900 {
		t.Fatalf("only %d of 5000 records aggregated", aggregated)
	}
}

func TestCallLimits(t *testing.T) {
	tests := []struct {
		name    string
		n, size int
		opts    []producer.Option
	}{
		{"many small records", 2400, 100, nil},
		{"large records", 40, 700 << 10, nil},
		{"aggregated large and small", 300, 90 << 10, []producer.Option{producer.WithAggregation(true)}},
		{"batch records option", 1000, 10, []producer.Option{producer.WithBatchRecords(100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(2)
			p, clk := start(t, k, tt.opts...)
			for i := range tt.n {
				data := make([]byte, tt.size)
				copy(data, fmt.Sprintf("k%d#%06d", i%7, i))
				if err := p.Put(context.Background(), fmt.Sprintf("k%d", i%7), data); err != nil {
					t.Fatal(err)
				}
			}
			if err := closeDriven(t, p, clk); err != nil {
				t.Fatal(err)
			}
			maxEntries := 500
			if tt.opts != nil && tt.name == "batch records option" {
				maxEntries = 100
			}
			for i, c := range k.Calls() {
				if c.Err != nil || c.Entries > maxEntries || c.Bytes > producer.MaxBatchBytes {
					t.Fatalf("call %d: %d entries, %d bytes, err %v", i, c.Entries, c.Bytes, c.Err)
				}
			}
			if got := p.Stats().RecordsSent; got != uint64(tt.n) {
				t.Fatalf("sent %d, want %d", got, tt.n)
			}
		})
	}
}

func TestPartialFailuresRetryExactlyTheFailedEntries(t *testing.T) {
	tests := []struct {
		name string
		code string
		opts []producer.Option
	}{
		{"throttled", "ProvisionedThroughputExceededException", nil},
		{"internal failure", "InternalFailure", nil},
		{"kms throttling", "KMSThrottlingException", nil},
		{"throttled aggregated", "ProvisionedThroughputExceededException", []producer.Option{producer.WithAggregation(true)}},
		{"internal failure strict", "InternalFailure", []producer.Option{producer.WithStrictOrdering(true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(3)
			// Fail a third of the entries of the first 20 calls. Retries go
			// first in the next call, so the pattern shifts with the call
			// to keep one record from failing every time.
			k.EntryError = func(call, entry int, _ string) string {
				if call < 20 && (call+entry)%3 == 0 {
					return tt.code
				}
				return ""
			}
			var res results
			p, clk := start(t, k, append(tt.opts, producer.WithResultHandler(res.handle), producer.WithMaxAttempts(25))...)
			const n, keys = 2000, 30
			putMany(t, p, n, keys)
			if err := closeDriven(t, p, clk); err != nil {
				t.Fatalf("Close: %v", err)
			}
			// Order per key is only promised with strict ordering.
			strict := strings.Contains(tt.name, "strict")
			checkWritten(t, k, n, keys, strict)
			s := p.Stats()
			if s.RecordsRetried == 0 || s.RecordsSent != n || s.RecordsFailed != 0 {
				t.Fatalf("stats %+v", s)
			}
			if strings.Contains(tt.code, "Throttl") && s.Throttled == 0 {
				t.Fatalf("no throttling counted: %+v", s)
			}
			retried := 0
			for _, r := range res.get() {
				if r.Attempts > 1 {
					retried++
				}
			}
			if retried == 0 {
				t.Fatal("no result shows a retry")
			}
		})
	}
}

func apiError(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "injected"}
}

func TestWholeCallErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantFail bool
		wantCode string
	}{
		{"throttling retried", apiError("ProvisionedThroughputExceededException"), false, ""},
		{"limit exceeded retried", apiError("LimitExceededException"), false, ""},
		{"internal failure retried", apiError("InternalFailure"), false, ""},
		{"connection reset retried", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false, ""},
		{"timeout retried", context.DeadlineExceeded, false, ""},
		{"stream missing fails", apiError("ResourceNotFoundException"), true, "ResourceNotFoundException"},
		{"access denied fails", apiError("AccessDeniedException"), true, "AccessDeniedException"},
		{"validation fails", apiError("ValidationException"), true, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(2)
			k.CallError = func(call int) error {
				if tt.wantFail || call < 3 {
					return tt.err
				}
				return nil
			}
			var res results
			p, clk := start(t, k, producer.WithResultHandler(res.handle))
			const n = 50
			putMany(t, p, n, 5)
			err := closeDriven(t, p, clk)
			if !tt.wantFail {
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
				checkWritten(t, k, n, 5, true)
				return
			}
			var fe *producer.FailedError
			if !errors.As(err, &fe) || len(fe.Records) != n {
				t.Fatalf("Close = %v, want a FailedError with %d records", err, n)
			}
			for _, r := range fe.Records {
				if r.Code != tt.wantCode || r.Err == nil || r.Record.PartitionKey == "" {
					t.Fatalf("failed record %+v", r)
				}
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
				t.Fatalf("Close error does not unwrap to the API error: %v", err)
			}
			if got := len(res.get()); got != n {
				t.Fatalf("%d results, want %d", got, n)
			}
			if s := p.Stats(); s.RecordsFailed != n || len(k.Written()) != 0 {
				t.Fatalf("stats %+v, written %d", s, len(k.Written()))
			}
		})
	}
}

func TestMaxAttempts(t *testing.T) {
	k := producertest.NewKinesis(1)
	k.EntryError = func(call, entry int, _ string) string {
		if entry == 0 {
			return "InternalFailure"
		}
		return ""
	}
	p, clk := start(t, k, producer.WithMaxAttempts(3), producer.WithMaxInFlight(1))
	if err := p.Put(context.Background(), "doomed", []byte("x")); err != nil {
		t.Fatal(err)
	}
	err := closeDriven(t, p, clk)
	var fe *producer.FailedError
	if !errors.As(err, &fe) || len(fe.Records) != 1 {
		t.Fatalf("Close = %v", err)
	}
	r := fe.Records[0]
	if r.Attempts != 3 || r.Code != "InternalFailure" || !errors.Is(r.Err, producer.ErrAttemptsExhausted) {
		t.Fatalf("failed record %+v", r)
	}
	var ee *producer.EntryError
	if !errors.As(r.Err, &ee) || ee.Code != "InternalFailure" {
		t.Fatalf("error %v does not carry the entry error", r.Err)
	}
}

func TestThrottlingIsBackpressureNotFailure(t *testing.T) {
	k := producertest.NewKinesis(1)
	k.EntryError = func(call, entry int, _ string) string {
		if call < 30 {
			return "ProvisionedThroughputExceededException"
		}
		return ""
	}
	p, clk := start(t, k, producer.WithMaxAttempts(1))
	putMany(t, p, 10, 1)
	if err := closeDriven(t, p, clk); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkWritten(t, k, 10, 1, true)
	if s := p.Stats(); s.Throttled < 30 {
		t.Fatalf("stats %+v", s)
	}
}

// TestThrottledShardSlowsDown checks the per-shard rate control: a shard
// that throttles waits out its backoff with half the quota while the other
// shard keeps flowing.
func TestThrottledShardSlowsDown(t *testing.T) {
	k := producertest.NewKinesis(2)
	hot := k.Shards()[0].ID
	var throttleHot atomic.Bool
	throttleHot.Store(true)
	k.EntryError = func(call, entry int, shard string) string {
		if shard == hot && throttleHot.Load() {
			return "ProvisionedThroughputExceededException"
		}
		return ""
	}
	p, clk := start(t, k, producer.WithLinger(time.Minute), producer.WithBackoff(time.Hour, time.Hour))
	var hotKey, coldKey string
	for i := 0; hotKey == "" || coldKey == ""; i++ {
		key := fmt.Sprintf("k%d", i)
		if k.ShardFor(kpl.PartitionKeyHash(key)) == hot {
			hotKey = key
		} else {
			coldKey = key
		}
	}
	waitReal := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached; stats %+v, calls %+v", what, p.Stats(), k.Calls())
			}
		}
	}
	ctx := context.Background()
	for i := range 400 {
		_ = p.Put(ctx, hotKey, line(hotKey, i))
	}
	clk.Advance(time.Minute) // linger passes: one call with all 400, throttled
	waitReal("hot throttled", func() bool { return p.Stats().Throttled == 400 })

	// The hot shard now waits an hour; the cold one is not held back.
	for i := range 100 {
		_ = p.Put(ctx, coldKey, line(coldKey, i))
	}
	clk.Advance(time.Minute)
	waitReal("cold written", func() bool { return len(k.Written()) == 100 })
	for _, w := range k.Written() {
		if w.ShardID == hot {
			t.Fatal("hot shard written during its backoff")
		}
	}

	calls := len(k.Calls())
	throttleHot.Store(false)
	clk.Advance(time.Hour)
	drive(t, clk, func() bool { return p.Stats().RecordsSent == 500 })
	// After a throttled call the hot shard may send half the records: 250.
	if got, want := k.Calls()[calls].ByShard[hot], 250*len(line(hotKey, 0))+250*len(hotKey); got != want {
		t.Fatalf("hot shard sent %d bytes after throttling, want %d (250 records)", got, want)
	}
	checkWritten(t, k, 500, 2, true)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestBufferFull(t *testing.T) {
	t.Run("fail fast", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		p, err := producer.New(k, "s", producer.WithBuffer(3, 1<<20), producer.WithBufferPolicy(producer.FailFast))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := p.Put(context.Background(), "k", []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Put(context.Background(), "k", []byte("4")); !errors.Is(err, producer.ErrBufferFull) {
			t.Fatalf("Put = %v, want ErrBufferFull", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail fast by bytes", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		p, _ := producer.New(k, "s", producer.WithBuffer(100, producer.MaxRecordBytes), producer.WithBufferPolicy(producer.FailFast))
		if err := p.Put(context.Background(), "k", make([]byte, producer.MaxRecordBytes-10)); err != nil {
			t.Fatal(err)
		}
		if err := p.Put(context.Background(), "k", make([]byte, 10)); !errors.Is(err, producer.ErrBufferFull) {
			t.Fatalf("Put = %v, want ErrBufferFull", err)
		}
		_ = p.Close(context.Background())
	})
	t.Run("block until ctx ends", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		p, _ := producer.New(k, "s", producer.WithBuffer(1, 1<<20))
		if err := p.Put(context.Background(), "k", []byte("1")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- p.Put(ctx, "k", []byte("2")) }()
		select {
		case err := <-errc:
			t.Fatalf("Put returned %v while the buffer was full", err)
		case <-time.After(50 * time.Millisecond):
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Put = %v, want context.Canceled", err)
		}
		_ = p.Close(context.Background())
	})
	t.Run("block until space frees", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		p, clk := start(t, k, producer.WithBuffer(1, 1<<20))
		if err := p.Put(context.Background(), "k", []byte("1")); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- p.Put(context.Background(), "k", []byte("2")) }()
		var err error
		drive(t, clk, func() bool {
			select {
			case err = <-errc:
				return true
			default:
				return false
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := closeDriven(t, p, clk); err != nil || len(k.Written()) != 2 {
			t.Fatalf("Close = %v, %d written", err, len(k.Written()))
		}
	})
	t.Run("blocked put fails when closed", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		k.Hold = make(chan struct{})
		p, _ := producer.New(k, "s", producer.WithBuffer(1, 1<<20))
		_ = p.Put(context.Background(), "k", []byte("1"))
		errc := make(chan error, 1)
		go func() { errc <- p.Put(context.Background(), "k", []byte("2")) }()
		time.Sleep(20 * time.Millisecond) // let it block; the outcome does not depend on it
		closed := make(chan error, 1)
		go func() { closed <- p.Close(ctxTimeout(t, 100*time.Millisecond)) }()
		if err := <-errc; !errors.Is(err, producer.ErrClosed) {
			t.Fatalf("blocked Put = %v, want ErrClosed", err)
		}
		<-closed
	})
}

func TestCloseReportsUnsentRecords(t *testing.T) {
	k := producertest.NewKinesis(2)
	k.Hold = make(chan struct{}) // Kinesis never answers
	var res results
	p, err := producer.New(k, "s", producer.WithResultHandler(res.handle))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	defer cancel()
	putMany(t, p, 20, 4)
	for p.Stats().InFlightCalls == 0 { // Run is up and a call hangs
		time.Sleep(time.Millisecond)
	}
	err = p.Close(ctxTimeout(t, 300*time.Millisecond))
	var fe *producer.FailedError
	if !errors.As(err, &fe) || len(fe.Records) != 20 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want all 20 records reported with the deadline", err)
	}
	keys := map[string]int{}
	for _, r := range fe.Records {
		if r.Code != "Canceled" {
			t.Fatalf("code %q", r.Code)
		}
		keys[r.Record.PartitionKey]++
	}
	if len(keys) != 4 {
		t.Fatalf("keys %v", keys)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run after Close = %v, want nil", err)
	}
	if got := len(res.get()); got != 20 {
		t.Fatalf("%d results, want 20", got)
	}
	if err := p.Put(context.Background(), "k", nil); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if again := p.Close(context.Background()); again != err {
		t.Fatalf("second Close = %v, want the first result", again)
	}
}

func TestCloseWithoutRunDrains(t *testing.T) {
	k := producertest.NewKinesis(3)
	p, err := producer.New(k, "s", producer.WithAggregation(true))
	if err != nil {
		t.Fatal(err)
	}
	putMany(t, p, 1000, 10)
	if err := p.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, k, 1000, 10, true)
	if err := p.Run(context.Background()); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("Run after Close = %v", err)
	}
}

// TestRunCanceledThenClose: Run's context ends with a call in flight; the
// abandoned records go back to the queue and Close, with its own context,
// sends every one exactly once.
func TestRunCanceledThenClose(t *testing.T) {
	k := producertest.NewKinesis(2)
	k.Hold = make(chan struct{})
	p, err := producer.New(k, "s", producer.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	putMany(t, p, 100, 5)
	for p.Stats().InFlightCalls == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	close(k.Hold)
	if err := p.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, k, 100, 5, true)
}

func TestRunTwice(t *testing.T) {
	p, err := producer.New(producertest.NewKinesis(1), "s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- p.Run(ctx) }()
	go func() { errs <- p.Run(ctx) }()
	if err := <-errs; !errors.Is(err, producer.ErrRunning) {
		t.Fatalf("one of two Runs = %v, want ErrRunning", err)
	}
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("the running Run = %v, want context.Canceled", err)
	}
}

func TestLingerAndFlush(t *testing.T) {
	k := producertest.NewKinesis(1)
	p, clk := start(t, k, producer.WithLinger(time.Second))
	if err := p.Put(context.Background(), "k", []byte("lingers")); err != nil {
		t.Fatal(err)
	}
	// Nothing is sent before linger passes...
	clk.Advance(900 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n := len(k.Calls()); n != 0 {
		t.Fatalf("%d calls before linger passed", n)
	}
	// ...and it is sent once it has.
	clk.Advance(100 * time.Millisecond)
	drive(t, clk, func() bool { return len(k.Written()) == 1 })

	// Flush sends at once, without the clock moving.
	if err := p.Put(context.Background(), "k", []byte("flushed")); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(k.Written()); n != 2 {
		t.Fatalf("%d written after Flush, want 2", n)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush of nothing = %v", err)
	}
}

func TestFlushReportsFailures(t *testing.T) {
	k := producertest.NewKinesis(1)
	k.CallError = func(int) error { return apiError("ResourceNotFoundException") }
	p, _ := start(t, k)
	putMany(t, p, 3, 1)
	err := p.Flush(ctxTimeout(t, 10*time.Second))
	var fe *producer.FailedError
	if !errors.As(err, &fe) || len(fe.Records) != 3 {
		t.Fatalf("Flush = %v", err)
	}
	if !strings.Contains(err.Error(), "3 records not sent (ResourceNotFoundException: 3)") {
		t.Fatalf("message %q", err)
	}
}

// TestReshardRefreshesShardMap: after the stream is resharded, records
// land on shards other than predicted; the producer re-reads the map and
// aggregates by the new shards.
func TestReshardRefreshesShardMap(t *testing.T) {
	k := producertest.NewKinesis(2)
	p, clk := start(t, k, producer.WithAggregation(true))
	putMany(t, p, 200, 50)
	if err := p.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	refreshes := p.Stats().ShardMapRefreshes
	k.SetShards(4)
	putMany(t, p, 200, 50)
	_ = p.Flush(ctxTimeout(t, 10*time.Second))
	drive(t, clk, func() bool { return p.Stats().ShardMapRefreshes > refreshes })
	before, _ := k.UserRecords()
	putMany(t, p, 400, 50)
	if err := closeDriven(t, p, clk); err != nil {
		t.Fatal(err)
	}
	recs, _ := k.UserRecords()
	for _, w := range recs[len(before):] {
		h, _ := kpl.EffectiveHashKey(w.PartitionKey, w.ExplicitHashKey)
		if k.ShardFor(h) != w.ShardID {
			t.Fatalf("after refresh, sub-record on %s maps to %s", w.ShardID, k.ShardFor(h))
		}
	}
}

// TestNeverGiveUp: with WithNeverGiveUp a record is never given up on
// while the producer lives — neither after more retryable failures than
// WithMaxAttempts allows, nor on errors that are otherwise permanent (the
// stream was deleted and re-created, access was denied and granted) —
// and it is written exactly once when the cause goes away. Only Close's
// context ending fails what is left.
func TestNeverGiveUp(t *testing.T) {
	tests := []struct {
		name      string
		callErr   error
		entryCode string
	}{
		{"stream missing", apiError("ResourceNotFoundException"), ""},
		{"access denied", apiError("AccessDeniedException"), ""},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ""},
		{"internal failure entries", nil, "InternalFailure"},
		{"KMS disabled entries", nil, "KMSDisabledException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := producertest.NewKinesis(2)
			const failingCalls = 25 // well over the default 10 attempts
			k.CallError = func(call int) error {
				if tt.callErr != nil && call < failingCalls {
					return tt.callErr
				}
				return nil
			}
			k.EntryError = func(call, _ int, _ string) string {
				if call < failingCalls {
					return tt.entryCode
				}
				return ""
			}
			var res results
			p, clk := start(t, k, producer.WithNeverGiveUp(true), producer.WithResultHandler(res.handle))
			const n = 40
			putMany(t, p, n, 4)
			if err := closeDriven(t, p, clk); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkWritten(t, k, n, 4, false)
			for _, r := range res.get() {
				if r.Err != nil {
					t.Fatalf("a record was given up on: %+v", r)
				}
			}
			if s := p.Stats(); s.RecordsFailed != 0 || s.RecordsSent != n || s.RecordsRetried == 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}

	t.Run("close deadline fails the rest", func(t *testing.T) {
		k := producertest.NewKinesis(1)
		k.CallError = func(int) error { return apiError("ResourceNotFoundException") }
		p, clk := start(t, k, producer.WithNeverGiveUp(true))
		putMany(t, p, 5, 1)
		drive(t, clk, func() bool { return p.Stats().Calls >= 3 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := p.Close(ctx)
		var fe *producer.FailedError
		if !errors.As(err, &fe) || len(fe.Records) != 5 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want the 5 records failed by the deadline", err)
		}
	})
}
