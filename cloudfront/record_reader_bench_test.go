package cloudfront_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/ingest/ingesttest"
)

// BenchmarkRecordReader measures the ingester's read path for a gzipped
// log file of realistic lines (ingesttest.LogFile): gunzip, line reading,
// record building and partition keys. MB/s is of the gzipped input.
func BenchmarkRecordReader(b *testing.B) {
	plain := ingesttest.LogFile(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), 20_000, 1)
	data := ingesttest.Gzip(plain)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rr := cloudfront.NewRecordReader(bytes.NewReader(data), cloudfront.WithCompression(cloudfront.Gzip))
		for {
			_, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(len(plain))/float64(len(data)), "gzip-ratio")
}
