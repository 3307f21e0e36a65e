package producer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// BenchmarkProducer measures the producer's own CPU cost per 400-byte
// record against the in-memory Kinesis (4 shards, 1,000 keys): Put, batch
// building, aggregation, response handling. Network time is not included;
// the integration test logs figures against the local Kinesis.
func BenchmarkProducer(b *testing.B) {
	for _, agg := range []bool{false, true} {
		b.Run(fmt.Sprintf("aggregation=%v", agg), func(b *testing.B) {
			k := producertest.NewKinesis(4)
			k.Discard = true
			p, err := producer.New(k, "bench", producer.WithAggregation(agg))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx)
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("asset-%06d", i)
			}
			data := make([]byte, 400)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := p.Put(ctx, keys[i%len(keys)], data); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(k.Count())/float64(i), "kinesis-records/record")
		})
	}
}
