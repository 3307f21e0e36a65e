package leasehold_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/lease"
)

// Reading the lease table: which worker holds which shard, how far each
// shard is checkpointed, and the workers' heartbeats. This is what
// `leasehold leases` prints; it needs DynamoDB, so it is not run by go test.
func Example_leaseTable() {
	ctx := context.Background()
	awsCfg, err := leasehold.LoadAWSConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store, err := lease.NewDynamoStore(dynamodb.NewFromConfig(awsCfg), "leasehold-leases")
	if err != nil {
		log.Fatal(err)
	}
	snap, err := store.Snapshot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range snap.Leases {
		fmt.Println(l.ShardID, l.Owner, l.Epoch, l.Checkpoint.Position, leasehold.LeaseState(l))
	}
	for _, w := range snap.Workers {
		fmt.Println(w.ID, "heartbeat", w.Heartbeat, "holds", w.Held)
	}
}
