package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Migrated is what Migrate copied.
type Migrated struct {
	// Copied leases were written to the new table; Present ones were
	// there already (a migration run again) and left as they are.
	Copied, Present int
}

// Migrate copies the leases of from, a table of the single-key schema of
// earlier versions, into the store's table (created if missing), so that
// workers of this version start where the old ones stopped. Checkpoints,
// epochs and parents are copied; owners and handoff requests are not (the
// old workers must be stopped: they released their leases, and the new
// fleet takes them as unowned). Worker items are not copied. A worker item
// in from that is not marked dead means an old worker is still running,
// or crashed: Migrate refuses, naming them, unless force. A lease already
// in the new table is left alone, so Migrate can be run again.
func (s *DynamoStore) Migrate(ctx context.Context, from string, force bool) (Migrated, error) {
	var m Migrated
	if from == s.table {
		return m, fmt.Errorf("migrate lease table %s: it is the table to migrate into; give lease.table a new name", from)
	}
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &from})
	if err != nil {
		return m, fmt.Errorf("migrate lease table %s: %w", from, err)
	}
	if ks := out.Table.KeySchema; len(ks) != 1 || aws.ToString(ks[0].AttributeName) != oldKeyAttr {
		return m, fmt.Errorf("migrate lease table %s: it does not have the single-key schema of earlier versions (hash key %q alone)", from, oldKeyAttr)
	}
	var leases []Lease
	var running []string
	var start map[string]types.AttributeValue
	for {
		page, err := s.db.Scan(ctx, &dynamodb.ScanInput{TableName: &from, ConsistentRead: aws.Bool(true), ExclusiveStartKey: start})
		if err != nil {
			return m, fmt.Errorf("migrate lease table %s: scan: %w", from, err)
		}
		for _, it := range page.Items {
			k := str(it[oldKeyAttr])
			switch {
			case strings.HasPrefix(k, shardPrefix):
				l := decodeLease(it)
				if l.ShardID == "" {
					l.ShardID = strings.TrimPrefix(k, shardPrefix)
				}
				l.Owner, l.HandoffTo = "", ""
				leases = append(leases, l)
			case strings.HasPrefix(k, workerPrefix):
				if d, ok := it[attrDead].(*types.AttributeValueMemberBOOL); !ok || !d.Value {
					running = append(running, strings.TrimPrefix(k, workerPrefix))
				}
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	if len(running) > 0 && !force {
		return m, fmt.Errorf("migrate lease table %s: workers of the earlier version still have items in it (running, or crashed): %s; "+
			"stop them first (a clean stop releases their leases and deletes the item); if they crashed, migrate with --force", from, strings.Join(running, ", "))
	}
	if err := s.EnsureTable(ctx); err != nil {
		return m, err
	}
	for _, l := range leases {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                &s.table,
			Item:                     encodeLease(l),
			ConditionExpression:      aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": attrPK},
		})
		var cf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &cf):
			m.Present++
		case err != nil:
			return m, fmt.Errorf("migrate lease %s into %s: %w", l.ShardID, s.table, err)
		default:
			m.Copied++
		}
	}
	return m, nil
}
