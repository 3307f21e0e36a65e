package lease_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// oldTable creates a table with the single-key schema of earlier versions
// (hash key "key") holding one lease and one worker item, as they wrote
// them.
func oldTable(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table := testenv.Name(t, "old-leases")
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })
	for _, item := range []map[string]types.AttributeValue{
		{"key": &types.AttributeValueMemberS{Value: "shard#shardId-000000000000"}, "shard_id": &types.AttributeValueMemberS{Value: "shardId-000000000000"},
			"epoch": &types.AttributeValueMemberN{Value: "7"}, "cp_seq": &types.AttributeValueMemberS{Value: "49590338271490256608559692538361571095921575989136588898"},
			"cp_sub": &types.AttributeValueMemberN{Value: "3"}, "lag_ms": &types.AttributeValueMemberN{Value: "0"},
			"updated_at": &types.AttributeValueMemberS{Value: "2026-12-01T10:00:00Z"}},
		{"key": &types.AttributeValueMemberS{Value: "worker#w1~0badcafe"}, "worker_id": &types.AttributeValueMemberS{Value: "w1"},
			"heartbeat": &types.AttributeValueMemberN{Value: "12"}, "dead": &types.AttributeValueMemberBOOL{Value: true}},
	} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	return table
}

// TestDynamoStoreRefusesAnOldTable: a table written by an earlier version
// (single key "key") is refused at start-up by EnsureTable, before any
// write, with the table's name and what to do; and a reader that does not
// call EnsureTable (leasehold leases, the explorer) gets the same error
// from its scan instead of an empty table.
func TestDynamoStoreRefusesAnOldTable(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	db := testenv.DynamoDB(e)
	table := oldTable(t, db)
	s, err := lease.NewDynamoStore(db, table)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = s.EnsureTable(ctx)
	if !errors.Is(err, lease.ErrTableSchema) {
		t.Fatalf("EnsureTable on an old table: %v, want ErrTableSchema", err)
	}
	for _, w := range []string{"lease table " + table, `hash key "key"`, "earlier version", "leasehold leases migrate --from " + table} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if _, err := s.Snapshot(ctx); !errors.Is(err, lease.ErrTableSchema) {
		t.Fatalf("Snapshot of an old table: %v, want ErrTableSchema", err)
	}
}
