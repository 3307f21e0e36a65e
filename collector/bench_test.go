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
//
// The spool=true cases add the durable spool in a temporary directory:
// every request waits for its events' write and fsync (shared with the
// requests waiting at the same time). Its figure depends on the disk's
// fsync latency; it also reports the mean fsync time.
func BenchmarkCollector(b *testing.B) {
	for _, cs := range []struct{ agg, spool bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		agg := cs.agg
		b.Run(fmt.Sprintf("aggregation=%v/spool=%v", agg, cs.spool), func(b *testing.B) {
			k := producertest.NewKinesis(4)
			k.Discard = true
			cfg := collector.DefaultConfig()
			if cs.spool {
				cfg.SpoolDir = b.TempDir()
			}
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
			if cs.spool {
				st := c.SpoolStats()
				b.ReportMetric(float64(st.Syncs), "fsyncs")
				if st.Syncs > 0 {
					b.ReportMetric(st.SyncSeconds/float64(st.Syncs)*1000, "ms/fsync")
				}
			}
		})
	}
}
