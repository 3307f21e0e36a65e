package producer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

func Example() {
	client := producertest.NewKinesis(2) // a *kinesis.Client in production
	p, err := producer.New(client, "events",
		producer.WithAggregation(true),
		producer.WithResultHandler(func(r producer.Result) {
			if r.Err != nil {
				fmt.Println("failed:", r.Record.Meta, r.Code)
			}
		}))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()

	for i := range 1000 {
		rec := producer.Record{
			PartitionKey: fmt.Sprintf("asset-%d", i%10),
			Data:         []byte(`{"action":"view"}`),
			Meta:         i, // comes back in the Result
		}
		if err := p.PutRecord(ctx, rec); err != nil {
			panic(err)
		}
	}

	// Flush waits until everything put so far has an outcome.
	if err := p.Flush(ctx); err != nil {
		fmt.Println("flush:", err)
	}

	// Shutdown: stop the loop's context at once; Close still drains with
	// its own deadline and says exactly what could not be sent.
	stop()
	<-runErr
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var failed *producer.FailedError
	if err := p.Close(closeCtx); errors.As(err, &failed) {
		fmt.Println(len(failed.Records), "records not sent")
	}
	s := p.Stats()
	fmt.Println(s.RecordsSent, "records sent; aggregated:", s.KinesisRecords < s.RecordsSent)
	// Output:
	// 1000 records sent; aggregated: true
}
