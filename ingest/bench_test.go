package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
	"github.com/leasehold/leasehold/producer/producertest"
)

// BenchmarkIngest measures the whole ingestion path of one file against
// in-memory S3 and Kinesis: gunzip, line reading, record building, KPL
// aggregation, PutRecords requests and the offset tracking. MB/s is of
// gzipped logs; run with -cpu 1 for a per-core figure. Network time is not
// included: the integration test logs figures against the local stack.
func BenchmarkIngest(b *testing.B) {
	const lines = 20_000
	data := ingesttest.Gzip(ingesttest.LogFile(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), lines, 1))
	s3 := ingesttest.NewS3()
	etag := s3.Put("logs", "cf/E1.2024-05-01-10.a.gz", data)
	k := producertest.NewKinesis(4)
	k.Discard = true
	in, err := ingest.New(s3, k, "logs", ingest.Config{Aggregate: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	defer in.Close(ctx)
	ref := ingest.ObjectRef{Bucket: "logs", Key: "cf/E1.2024-05-01-10.a.gz", ETag: etag}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		res, err := in.Ingest(ctx, ref, ingest.FileOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n += int(res.Records)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(n)/float64(k.Count()), "lines/kinesis-record")
}
