package lease_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/lease"
)

// describeOnly answers DescribeTable with a table of the given key schema;
// any other call fails the test (EnsureTable must not write to it).
type describeOnly struct {
	lease.DynamoAPI
	t    *testing.T
	keys []types.KeySchemaElement
}

func (d describeOnly) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableStatus: types.TableStatusActive, KeySchema: d.keys}}, nil
}

func key(name string, kt types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
}

// TestEnsureTableRefusesAnOldSchema: the worker items moved into one
// partition (a composite key pk/sk) so that one query polls them all. A
// table of the earlier single-key schema ("key" alone) must stop the
// worker at start-up, naming the table and what to do, instead of being
// used with keys it does not have.
func TestEnsureTableRefusesAnOldSchema(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []types.KeySchemaElement
		want []string // nil: accepted
	}{
		{"this version's", []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)}, nil},
		{"an earlier version's", []types.KeySchemaElement{key("key", types.KeyTypeHash)},
			[]string{"lease table old-leases", `hash key "key"`, `needs hash key "pk" and range key "sk"`, "earlier version", "leasehold leases migrate --from old-leases"}},
		{"someone else's", []types.KeySchemaElement{key("id", types.KeyTypeHash), key("ts", types.KeyTypeRange)},
			[]string{"lease table old-leases", `hash key "id" and range key "ts"`, "use a new table (lease.table)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := lease.NewDynamoStore(describeOnly{t: t, keys: tc.keys}, "old-leases")
			if err != nil {
				t.Fatal(err)
			}
			err = s.EnsureTable(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("EnsureTable: %v", err)
				}
				return
			}
			if !errors.Is(err, lease.ErrTableSchema) {
				t.Fatalf("EnsureTable = %v, want ErrTableSchema", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
