package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// TestDynamoStoreConformance runs the store contract against the real
// DynamoDB store on the local emulator (dynalite).
func TestDynamoStoreConformance(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	db := testenv.DynamoDB(e)
	leasetest.RunConformance(t, func(t *testing.T) lease.Store {
		table := testenv.Name(t, "leases")
		s, err := lease.NewDynamoStore(db, table)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.EnsureTable(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table})
		})
		return s
	})
}
