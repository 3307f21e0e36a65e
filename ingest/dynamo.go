package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/internal/backoff"
)

// DynamoAPI is the part of the DynamoDB client the manifest uses.
// *dynamodb.Client implements it.
type DynamoAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Attribute names of the manifest table; docs/INGEST.md describes each.
const (
	attrKey      = "key"           // S: s3://bucket/key (hash key)
	attrETag     = "etag"          // S: the object's ETag, without quotes
	attrState    = "state"         // S: pending, done or failed
	attrLine     = "lines_sent"    // N: resume offset (a line number)
	attrRecords  = "records_sent"  // N: data lines confirmed, over every run
	attrBadLines = "bad_lines"     // N: lines not sent in the last run
	attrAttempts = "attempts"      // N: runs that began the file
	attrError    = "error"         // S: why the last run failed
	attrUpdated  = "updated_at"    // S: RFC 3339, the writer's clock, for people
	attrOwner    = "owner"         // S: the run holding the claim; absent when none
	attrClaim    = "claim_version" // N: changes with every claim and renewal
)

// DynamoManifest is the Manifest on a DynamoDB table with the string hash
// key "key". It is safe for concurrent use; it needs only conditional
// Put/Update and consistent Get, which the local emulator supports.
type DynamoManifest struct {
	db    DynamoAPI
	table string
	now   func() time.Time
}

// NewDynamoManifest returns a manifest on table. It does not touch the
// table: call EnsureTable.
func NewDynamoManifest(db DynamoAPI, table string) *DynamoManifest {
	return &DynamoManifest{db: db, table: table, now: time.Now}
}

// Table returns the table name.
func (m *DynamoManifest) Table() string { return m.table }

// EnsureTable creates the table (on-demand billing) if missing and waits
// until it is ACTIVE. Runs started together race to create it:
// ResourceInUseException means another one did, and is fine.
func (m *DynamoManifest) EnsureTable(ctx context.Context) error {
	_, err := m.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &m.table})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = m.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &m.table,
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create manifest table %s: %w", m.table, err)
		}
	} else if err != nil {
		return fmt.Errorf("describe manifest table %s: %w", m.table, err)
	}
	for {
		out, err := m.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &m.table})
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("wait for manifest table %s: %w", m.table, err)
		}
		if err := backoff.Sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("wait for manifest table %s: %w", m.table, err)
		}
	}
}

// Get reads the file's entry with a strongly consistent read.
func (m *DynamoManifest) Get(ctx context.Context, url string) (Entry, error) {
	out, err := m.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &m.table, Key: itemKey(url), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Entry{}, fmt.Errorf("get manifest entry %s: %w", url, err)
	}
	if len(out.Item) == 0 {
		return Entry{}, fmt.Errorf("get manifest entry %s: %w", url, ErrNotFound)
	}
	return decodeEntry(out.Item), nil
}

// Begin implements Manifest. It reads the entry, then writes it
// conditionally on what it read, and reads again if another writer got in
// between (up to a few times, then ErrConflict).
func (m *DynamoManifest) Begin(ctx context.Context, url, etag, owner string, takeOver int64) (Entry, error) {
	if owner == "" {
		return Entry{}, fmt.Errorf("begin manifest entry %s: empty owner", url)
	}
	for range 5 {
		cur, err := m.Get(ctx, url)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && cur.ETag != etag):
			e := Entry{URL: url, ETag: etag, State: StatePending, Attempts: 1, Updated: m.now(), Owner: owner, ClaimVersion: cur.ClaimVersion + 1}
			in := &dynamodb.PutItemInput{TableName: &m.table, Item: encodeEntry(e)}
			if err != nil {
				in.ConditionExpression = aws.String("attribute_not_exists(#k)")
				in.ExpressionAttributeNames = map[string]string{"#k": attrKey}
			} else {
				in.ConditionExpression = aws.String("#etag = :old")
				in.ExpressionAttributeNames = map[string]string{"#etag": attrETag}
				in.ExpressionAttributeValues = map[string]types.AttributeValue{":old": s(cur.ETag)}
			}
			_, err := m.db.PutItem(ctx, in)
			if isConditionFailed(err) {
				continue
			}
			if err != nil {
				return Entry{}, fmt.Errorf("begin manifest entry %s: %w", url, err)
			}
			return e, nil
		case err != nil:
			return Entry{}, fmt.Errorf("begin: %w", err)
		case cur.State == StateDone:
			return cur, nil
		case cur.Owner != "" && cur.Owner != owner && cur.ClaimVersion != takeOver:
			return Entry{}, &ClaimedError{Entry: cur}
		}
		out, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &m.table,
			Key:       itemKey(url),
			UpdateExpression: aws.String("SET #state = :pending, #attempts = if_not_exists(#attempts, :zero) + :one, #updated = :now, " +
				"#owner = :me, #claim = if_not_exists(#claim, :zero) + :one REMOVE #error"),
			// Granted when unclaimed, claimed by us, or still at the
			// version the caller watched go stale.
			ConditionExpression: aws.String("#etag = :etag AND #state <> :done AND (attribute_not_exists(#owner) OR #owner = :me OR #claim = :seen)"),
			ExpressionAttributeNames: map[string]string{"#state": attrState, "#attempts": attrAttempts, "#updated": attrUpdated,
				"#error": attrError, "#etag": attrETag, "#owner": attrOwner, "#claim": attrClaim},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pending": s(string(StatePending)), ":zero": n(0), ":one": n(1),
				":now": s(m.now().UTC().Format(time.RFC3339)), ":etag": s(etag), ":done": s(string(StateDone)),
				":me": s(owner), ":seen": n(takeOver)},
			ReturnValues: types.ReturnValueAllNew,
		})
		if isConditionFailed(err) {
			continue
		}
		if err != nil {
			return Entry{}, fmt.Errorf("begin manifest entry %s: %w", url, err)
		}
		return decodeEntry(out.Attributes), nil
	}
	return Entry{}, fmt.Errorf("begin manifest entry %s: %w", url, ErrConflict)
}

// Renew implements Manifest with one conditional UpdateItem.
func (m *DynamoManifest) Renew(ctx context.Context, url, etag, owner string) error {
	_, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &m.table,
		Key:                 itemKey(url),
		UpdateExpression:    aws.String("SET #claim = #claim + :one, #updated = :now"),
		ConditionExpression: aws.String("#etag = :etag AND #owner = :me"),
		ExpressionAttributeNames: map[string]string{"#claim": attrClaim, "#updated": attrUpdated, "#etag": attrETag,
			"#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1), ":now": s(m.now().UTC().Format(time.RFC3339)),
			":etag": s(etag), ":me": s(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("renew claim on %s: %w", url, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("renew claim on %s: %w", url, err)
	}
	return nil
}

// Release implements Manifest with one conditional UpdateItem.
func (m *DynamoManifest) Release(ctx context.Context, url, etag, owner string) error {
	_, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &m.table,
		Key:                       itemKey(url),
		UpdateExpression:          aws.String("SET #updated = :now REMOVE #owner"),
		ConditionExpression:       aws.String("#etag = :etag AND #owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#updated": attrUpdated, "#etag": attrETag, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": s(m.now().UTC().Format(time.RFC3339)), ":etag": s(etag), ":me": s(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("release claim on %s: %w", url, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("release claim on %s: %w", url, err)
	}
	return nil
}

// Checkpoint implements Manifest with one conditional UpdateItem.
func (m *DynamoManifest) Checkpoint(ctx context.Context, url, etag, owner string, line int, records int64) error {
	_, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &m.table,
		Key:                 itemKey(url),
		UpdateExpression:    aws.String("SET #line = :line, #records = :records, #updated = :now"),
		ConditionExpression: aws.String("#etag = :etag AND #state = :pending AND #owner = :me AND (attribute_not_exists(#line) OR #line <= :line)"),
		ExpressionAttributeNames: map[string]string{"#line": attrLine, "#records": attrRecords, "#updated": attrUpdated,
			"#etag": attrETag, "#state": attrState, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":line": n(int64(line)), ":records": n(records),
			":now": s(m.now().UTC().Format(time.RFC3339)), ":etag": s(etag), ":pending": s(string(StatePending)), ":me": s(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("checkpoint %s at line %d: %w", url, line, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s at line %d: %w", url, line, err)
	}
	return nil
}

// Finish implements Manifest with one conditional UpdateItem.
func (m *DynamoManifest) Finish(ctx context.Context, e Entry) error {
	if e.State != StateDone && e.State != StateFailed {
		return fmt.Errorf("finish manifest entry %s: state %q is not done or failed", e.URL, e.State)
	}
	names := map[string]string{"#state": attrState, "#line": attrLine, "#records": attrRecords, "#bad": attrBadLines,
		"#updated": attrUpdated, "#etag": attrETag, "#error": attrError, "#owner": attrOwner}
	values := map[string]types.AttributeValue{":state": s(string(e.State)), ":line": n(int64(e.Line)), ":records": n(e.Records),
		":bad": n(e.BadLines), ":now": s(m.now().UTC().Format(time.RFC3339)), ":etag": s(e.ETag), ":me": s(e.Owner),
		":done": s(string(StateDone))}
	update := "SET #state = :state, #line = :line, #records = :records, #bad = :bad, #updated = :now"
	remove := []string{"#owner"}
	if e.Error != "" {
		update += ", #error = :error"
		values[":error"] = s(e.Error)
	} else {
		remove = append(remove, "#error")
	}
	update += " REMOVE " + strings.Join(remove, ", ")
	cond := "#etag = :etag AND (#owner = :me OR #state = :done)" // finishing a done file as done again is fine
	if e.State == StateFailed {
		cond = "#etag = :etag AND #owner = :me AND #state <> :done"
	}
	_, err := m.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &m.table, Key: itemKey(e.URL), UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		return fmt.Errorf("finish manifest entry %s as %s: %w", e.URL, e.State, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("finish manifest entry %s as %s: %w", e.URL, e.State, err)
	}
	return nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func itemKey(url string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: s(url)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func encodeEntry(e Entry) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{
		attrKey: s(e.URL), attrETag: s(e.ETag), attrState: s(string(e.State)), attrLine: n(int64(e.Line)),
		attrRecords: n(e.Records), attrBadLines: n(e.BadLines), attrAttempts: n(int64(e.Attempts)),
		attrUpdated: s(e.Updated.UTC().Format(time.RFC3339)),
	}
	if e.Error != "" {
		it[attrError] = s(e.Error)
	}
	if e.Owner != "" {
		it[attrOwner] = s(e.Owner)
		it[attrClaim] = n(e.ClaimVersion)
	}
	return it
}

func decodeEntry(it map[string]types.AttributeValue) Entry {
	str := func(k string) string {
		if v, ok := it[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(k string) int64 {
		if v, ok := it[k].(*types.AttributeValueMemberN); ok {
			x, _ := strconv.ParseInt(v.Value, 10, 64)
			return x
		}
		return 0
	}
	updated, _ := time.Parse(time.RFC3339, str(attrUpdated))
	return Entry{
		URL: str(attrKey), ETag: str(attrETag), State: State(str(attrState)), Line: int(num(attrLine)),
		Records: num(attrRecords), BadLines: num(attrBadLines), Attempts: int(num(attrAttempts)),
		Error: str(attrError), Updated: updated, Owner: str(attrOwner), ClaimVersion: num(attrClaim),
	}
}
