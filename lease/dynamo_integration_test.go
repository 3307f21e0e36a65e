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
	for {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			t.Fatal(err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// TestMigrateCopiesTheCheckpointsOfAnOldTable: the way out the refusal
// names. The leases of an old table are copied into a new one with their
// checkpoints, epochs and parents, unowned; a worker item of the old
// version that is not marked dead (running or crashed) is refused unless
// forced; a second run copies nothing twice.
func TestMigrateCopiesTheCheckpointsOfAnOldTable(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	db := testenv.DynamoDB(e)
	from := oldTable(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	to := testenv.Name(t, "new-leases")
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &to}) })
	s, err := lease.NewDynamoStore(db, to)
	if err != nil {
		t.Fatal(err)
	}
	// An old worker still has its item: refused, naming it.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &from, Item: map[string]types.AttributeValue{
		"key": &types.AttributeValueMemberS{Value: "worker#w2~12345678"}, "heartbeat": &types.AttributeValueMemberN{Value: "3"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx, from, false); err == nil || !strings.Contains(err.Error(), "w2~12345678") {
		t.Fatalf("migrate with an old worker's item left: %v, want a refusal naming it", err)
	}
	m, err := s.Migrate(ctx, from, true)
	if err != nil || m.Copied != 1 {
		t.Fatalf("migrate --force: %+v, %v; want 1 lease copied", m, err)
	}
	if err := s.EnsureTable(ctx); err != nil {
		t.Fatalf("the new table is refused: %v", err)
	}
	l, err := s.Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l.Owner != "" || l.Epoch != 7 || l.Checkpoint.Position.Sequence != "49590338271490256608559692538361571095921575989136588898" || l.Checkpoint.Position.Sub != 3 {
		t.Fatalf("migrated lease: %+v", l)
	}
	if m, err := s.Migrate(ctx, from, true); err != nil || m.Copied != 0 || m.Present != 1 {
		t.Fatalf("second migrate: %+v, %v; want nothing copied, 1 present", m, err)
	}
	if _, err := s.Migrate(ctx, to, true); err == nil {
		t.Fatal("migrating from a table of this version must be refused")
	}
}
