package integration

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"

	// Imported under another name: this package has a producer type.
	kproducer "github.com/leasehold/leasehold/producer"
)

// TestProducerExactlyOnce produces uniquely numbered records into a
// 4-shard stream of the local Kinesis, with and without KPL aggregation and
// with and without a fault-injecting transport (entry failures, throttled
// and failed calls, connection resets), then reads every shard back from
// TRIM_HORIZON and checks that each record arrived exactly once. It logs
// throughput figures against the local Kinesis.
func TestProducerExactlyOnce(t *testing.T) {
	e := testenv.Require(t, "kinesis")
	kc := testenv.Kinesis(e)
	faults := &faultproxy.Config{Seed: 42, EntryFailRate: 0.2, ThrottleRate: 0.05, ServerErrorRate: 0.05, ResetRate: 0.05}
	tests := []struct {
		name    string
		agg     bool
		strict  bool
		faults  *faultproxy.Config
		ordered bool // per-key order is promised
	}{
		{name: "plain", ordered: true},
		{name: "aggregated", agg: true, ordered: true},
		{name: "plain with faults", faults: faults},
		{name: "aggregated with faults", agg: true, faults: faults},
		{name: "aggregated strict with faults", agg: true, strict: true, faults: faults, ordered: true},
	}
	const n, keys = 5000, 97
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := testenv.Name(t, "producer")
			createStream(t, kc, stream, 4)

			var client kproducer.KinesisAPI = kc
			var fp *faultproxy.Transport
			if tt.faults != nil {
				var err error
				if fp, err = faultproxy.New(nil, *tt.faults); err != nil {
					t.Fatal(err)
				}
				client = kinesis.NewFromConfig(testenv.AWS(), func(o *kinesis.Options) {
					o.BaseEndpoint = aws.String(e.Kinesis)
					o.HTTPClient = &http.Client{Transport: fp}
				})
			}
			var results, failures atomic.Int64
			opts := []kproducer.Option{kproducer.WithAggregation(tt.agg)}
			if tt.agg && tt.faults != nil {
				// Small aggregates in small calls, so that 5,000 records
				// make enough entries and calls for faults to hit.
				opts = append(opts, kproducer.WithAggregationLimits(16<<10, 0), kproducer.WithBatchRecords(10))
			}
			p, err := kproducer.New(client, stream, append(opts,
				kproducer.WithStrictOrdering(tt.strict),
				kproducer.WithBackoff(20*time.Millisecond, 500*time.Millisecond),
				kproducer.WithMaxAttempts(50),
				kproducer.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))),
				kproducer.WithResultHandler(func(r kproducer.Result) {
					results.Add(1)
					if r.Err != nil {
						failures.Add(1)
					}
				}))...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testenv.Context(t, 3*time.Minute)
			runCtx, stop := context.WithCancel(ctx)
			runErr := make(chan error, 1)
			go func() { runErr <- p.Run(runCtx) }()
			defer func() {
				stop()
				<-runErr
			}()

			pad := strings.Repeat("x", 180) // ~200-byte events
			began := time.Now()
			for i := range n {
				key := fmt.Sprintf("key-%d", i%keys)
				data := fmt.Sprintf("%s|%06d|%s", key, i, pad)
				if err := p.Put(ctx, key, []byte(data)); err != nil {
					t.Fatalf("Put %d: %v", i, err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			elapsed := time.Since(began)
			s := p.Stats()
			t.Logf("local Kinesis: %d records (%.1f MB) in %v: %.0f records/s, %.2f MB/s; %d Kinesis records in %d calls; %d retried sends, %d throttled",
				n, float64(s.BytesSent)/1e6, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
				float64(s.BytesSent)/1e6/elapsed.Seconds(), s.KinesisRecords, s.Calls, s.RecordsRetried, s.Throttled)
			if fp != nil {
				t.Logf("faults injected: %+v", fp.Stats())
			}
			if results.Load() != n || failures.Load() != 0 || s.RecordsSent != n {
				t.Fatalf("results %d (failures %d), stats %+v", results.Load(), failures.Load(), s)
			}
			if tt.agg && s.KinesisRecords*10 > n {
				t.Fatalf("aggregation packed %d records into %d Kinesis records", n, s.KinesisRecords)
			}

			got := readStream(t, kc, stream)
			seen := make([]int, n)
			last := map[string]int{}
			for _, r := range got {
				parts := strings.SplitN(string(r.Data), "|", 3)
				i, err := strconv.Atoi(parts[1])
				if err != nil || i < 0 || i >= n || parts[0] != r.PartitionKey {
					t.Fatalf("unexpected record %.40q with key %q", r.Data, r.PartitionKey)
				}
				seen[i]++
				if prev, ok := last[parts[0]]; tt.ordered && ok && i < prev {
					t.Fatalf("key %s: record %d read after %d", parts[0], i, prev)
				}
				last[parts[0]] = i
			}
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("record %d read %d times (of %d read)", i, c, len(got))
				}
			}
			if fp != nil && fp.Stats().EntriesFailed == 0 {
				t.Fatal("the fault proxy injected no entry failures")
			}
		})
	}
}
