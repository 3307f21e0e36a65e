package dynamosink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// apiErr is a DynamoDB error as the SDK reports an unmodelled one.
type apiErr struct {
	code, msg string
	status    int
}

func (e *apiErr) Error() string                 { return fmt.Sprintf("api error %s: %s", e.code, e.msg) }
func (e *apiErr) ErrorCode() string             { return e.code }
func (e *apiErr) ErrorMessage() string          { return e.msg }
func (e *apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }
func (e *apiErr) HTTPStatusCode() int           { return e.status }

// fakeDB is one in-memory table with DynamoDB's BatchWriteItem rules: at
// most 25 requests, no key twice, and a ValidationException for the whole
// request when an item is invalid (here: a "doc" over maxDoc bytes).
// unprocessed, when set, picks requests to hand back unprocessed. Safe for
// concurrent use.
type fakeDB struct {
	mu          sync.Mutex
	name        string
	exists      bool
	status      types.TableStatus
	keySchema   []types.KeySchemaElement
	items       map[string]map[string]types.AttributeValue // pk\x00sk → item
	calls       int
	maxInFlight int
	inFlight    int
	maxDoc      int
	unprocessed func(call int, reqs []types.WriteRequest) []types.WriteRequest
	fail        func(call int) error
	createErr   error
	describes   int
}

func newFakeDB(name string) *fakeDB {
	return &fakeDB{name: name, items: map[string]map[string]types.AttributeValue{}, maxDoc: 1 << 30}
}

func s(av types.AttributeValue) string {
	if v, ok := av.(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (f *fakeDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(call); err != nil {
			return nil, err
		}
	}
	reqs := in.RequestItems[f.name]
	if !f.exists || len(in.RequestItems) != 1 {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	if len(reqs) > 25 {
		return nil, &apiErr{"ValidationException", "Too many items requested for the BatchWriteItem call", 400}
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		it := r.PutRequest.Item
		k := s(it[AttrPK]) + "\x00" + s(it[AttrSK])
		if seen[k] {
			return nil, &apiErr{"ValidationException", "Provided list of item keys contains duplicates", 400}
		}
		seen[k] = true
		if len(s(it[AttrDoc])) > f.maxDoc {
			return nil, &apiErr{"ValidationException", "Item size has exceeded the maximum allowed size", 400}
		}
	}
	var left []types.WriteRequest
	if f.unprocessed != nil {
		left = f.unprocessed(call, reqs)
	}
	skip := map[string]bool{}
	for _, r := range left {
		skip[s(r.PutRequest.Item[AttrPK])+"\x00"+s(r.PutRequest.Item[AttrSK])] = true
	}
	for _, r := range reqs {
		it := r.PutRequest.Item
		k := s(it[AttrPK]) + "\x00" + s(it[AttrSK])
		if !skip[k] {
			f.items[k] = it
		}
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if len(left) > 0 {
		out.UnprocessedItems = map[string][]types.WriteRequest{f.name: left}
	}
	return out, nil
}

// Scan completes processors.DynamoDBClient; the sink never scans.
func (f *fakeDB) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("fakeDB: Scan not supported")
}

func (f *fakeDB) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	if !f.exists || aws.ToString(in.TableName) != f.name {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	st := f.status
	if st == types.TableStatusCreating {
		f.status = types.TableStatusActive // active at the next look
	}
	var defs []types.AttributeDefinition
	for _, k := range f.keySchema {
		defs = append(defs, types.AttributeDefinition{AttributeName: k.AttributeName, AttributeType: types.ScalarAttributeTypeS})
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: &f.name, TableStatus: st, KeySchema: f.keySchema, AttributeDefinitions: defs}}, nil
}

func (f *fakeDB) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return nil, f.createErr
	}
	if f.exists {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists")}
	}
	if in.BillingMode != types.BillingModePayPerRequest {
		return nil, &apiErr{"ValidationException", "want on-demand", 400}
	}
	f.name, f.exists, f.status, f.keySchema = aws.ToString(in.TableName), true, types.TableStatusCreating, in.KeySchema
	return &dynamodb.CreateTableOutput{}, nil
}

// query returns the sort keys of pk's items, sorted, as Query would.
func (f *fakeDB) query(pk string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sks []string
	for k := range f.items {
		if p, sk, _ := strings.Cut(k, "\x00"); p == pk {
			sks = append(sks, sk)
		}
	}
	sort.Strings(sks)
	return sks
}

func (f *fakeDB) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.items)
}
