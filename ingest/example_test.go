package ingest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
	"github.com/leasehold/leasehold/producer/producertest"
)

func Example() {
	// In production: awsconf.S3, awsconf.Kinesis and a DynamoManifest.
	s3 := ingesttest.NewS3()
	kinesis := producertest.NewKinesis(4)
	manifest := ingesttest.NewManifest()
	for h := range 3 {
		hour := time.Date(2024, 5, 1, 10+h, 0, 0, 0, time.UTC)
		key := fmt.Sprintf("cf/E2EXAMPLE.%s.abc.gz", hour.Format("2006-01-02-15"))
		s3.Put("logs", key, ingesttest.Gzip(ingesttest.LogFile(hour, 1000, uint64(h))))
	}

	in, err := ingest.New(s3, kinesis, "events", ingest.Config{Aggregate: true, Manifest: manifest})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	defer in.Close(ctx)

	spec := ingest.BackfillSpec{Bucket: "logs", Prefix: "cf/", Range: ingest.TimeRange{
		From: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)}}
	sum, err := in.Backfill(ctx, spec, ingest.RunOptions{Concurrency: 2})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d done, %d outside the range, %d lines\n", sum.Done, sum.Excluded, sum.Records)

	// A rerun skips what the manifest says is done.
	sum, _ = in.Backfill(ctx, spec, ingest.RunOptions{})
	fmt.Printf("rerun: %d skipped, %d lines\n", sum.Skipped, sum.Records)
	// Output:
	// 2 done, 1 outside the range, 2000 lines
	// rerun: 2 skipped, 0 lines
}
