package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/internal/dev/workload"
)

// CatalogTable is the DynamoDB table holding the demo's asset catalog,
// which the pipeline's asset_lookup stage reads.
const CatalogTable = "leasehold-demo-catalog"

// writeCatalog writes the workload's catalog to CatalogTable (created if
// missing; items are overwritten, so a rerun is idempotent) and to
// catalog.ndjson in dir, and returns the number of entries.
func writeCatalog(ctx context.Context, db *dynamodb.Client, wl *workload.Workload, dir string) (int, error) {
	var buf bytes.Buffer
	n, err := wl.WriteCatalog(&buf)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.ndjson"), buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(CatalogTable),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("asset_id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("asset_id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return 0, fmt.Errorf("create table %s: %w", CatalogTable, err)
	}
	for range 100 {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(CatalogTable)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	var reqs []types.WriteRequest
	flush := func() error {
		for len(reqs) > 0 {
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{CatalogTable: reqs}})
			if err != nil {
				return fmt.Errorf("write catalog to %s: %w", CatalogTable, err)
			}
			reqs = out.UnprocessedItems[CatalogTable]
		}
		return nil
	}
	for _, e := range wl.Catalog() {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"asset_id": s(e.AssetID), "title": s(e.Title), "type": s(e.Type), "customer": s(e.Customer), "collection": s(e.Collection),
		}}})
		if len(reqs) == 25 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, flush()
}
