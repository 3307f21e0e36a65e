package opensearch_test

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/worker"
)

// A worker registers the sink type; a pipeline config then names it:
//
//	pipeline:
//	  sinks:
//	    - type: opensearch
//	      url: https://search-analytics.eu-west-1.es.amazonaws.com
//	      index: leasehold-events-{yyyy.MM.dd}
//	      flush_bytes: 5MiB
//	      flush_interval: 1s
//	      aws_sigv4: {region: eu-west-1}
func ExampleRegister() {
	reg := processors.NewRegistry()
	opensearch.Register(reg)
	_, err := reg.Sink("opensearch")
	fmt.Println(err)
	// Output: <nil>
}

// Using the sink from Go: one Sink per worker, one ShardSink per shard.
func ExampleNew() {
	ctx := context.Background()
	sink, err := opensearch.New(ctx, opensearch.Config{URL: "http://127.0.0.1:9200", FlushInterval: 500 * time.Millisecond}, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close(ctx)
	ss, err := sink.Open(ctx, worker.Shard{StreamName: "events", ShardID: "shardId-000000000000"}, printDeadLetters{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ss.Close()
	var batch []*processors.Message // parsed messages of one GetRecords call
	if err := ss.Write(ctx, batch); err != nil {
		fmt.Println(err)
		return
	}
	if err := ss.Flush(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("durable through", ss.Durable(), sink.Stats().DocsIndexed)
}

// printDeadLetters stands in for the pipeline's dead-letter destination
// (an S3 prefix in production), which must store messages durably.
type printDeadLetters struct{}

func (printDeadLetters) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	for _, m := range msgs {
		fmt.Println("dead-lettered", m.Record.SequenceNumber, m.Failed().Err)
	}
	return nil
}
