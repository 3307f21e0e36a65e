package s3sink_test

import (
	"fmt"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors/s3sink"
)

// The key of an archive object names its partition (by event time, UTC),
// its stream and shard, and its first record, so a replay computes the
// same key and its conditional put cannot overwrite the object.
func ExampleKey() {
	first := checkpoint.Position{Sequence: "49650000000000000000000000000000000000000000000000000001", Sub: 0}
	eventTime := time.Date(2024, 5, 1, 15, 4, 5, 0, time.FixedZone("CEST", 2*3600))
	fmt.Println(s3sink.Key(s3sink.DefaultPrefix, eventTime, "clicks", "shardId-000000000003", first))
	// Output:
	// events/dt=2024-05-01/hour=13/clicks/shardId-000000000003/49650000000000000000000000000000000000000000000000000001-0.ndjson.gz
}
