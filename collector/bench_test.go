package collector_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// BenchmarkCollector measures the collector's own ceiling: NDJSON batches
// of 50 events posted over loopback HTTP by parallel clients, validated and
// put into a producer whose in-memory Kinesis discards what it gets. The
// local Kinesis is slower than this; see docs/COLLECTOR.md for figures
// against it.
//
//	go test -run '^$' -bench Collector -benchtime 5s ./collector/
func BenchmarkCollector(b *testing.B) {
	for _, agg := range []bool{false, true} {
		b.Run(fmt.Sprintf("aggregation=%v", agg), func(b *testing.B) {
			k := producertest.NewKinesis(4)
			k.Discard = true
			cfg := collector.DefaultConfig()
			c, err := collector.New(k, "bench", cfg, zap.NewNop(), producer.WithAggregation(agg))
			if err != nil {
				b.Fatal(err)
			}
			url, stop := servedB(b, c)
			const perRequest = 50
			var lines []string
			for i := range perRequest {
				lines = append(lines, event(fmt.Sprintf("e-%d", i)))
			}
			body := ndjson(lines...)
			b.SetBytes(int64(len(body)))
			var refused atomic.Int64
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			client := &http.Client{Transport: tr}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url+collector.Path, strings.NewReader(body))
					req.Header.Set("Content-Type", collector.ContentTypeNDJSON)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						refused.Add(1)
					}
				}
			})
			b.StopTimer()
			if err := stop(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
		})
	}
}
