package lease

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

	"github.com/leasehold/leasehold/checkpoint"
)

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Attribute names of the lease table; docs/LEASES.md describes each.
const (
	attrKey       = "key"        // "shard#<id>" or "worker#<id>"
	attrShard     = "shard_id"   // lease: the shard
	attrOwner     = "owner"      // lease: holding worker, absent when unowned
	attrEpoch     = "epoch"      // lease: ownership counter
	attrSeq       = "cp_seq"     // lease: checkpoint sequence or sentinel
	attrSub       = "cp_sub"     // lease: checkpoint sub-sequence
	attrSinks     = "cp_sinks"   // lease: map sink -> "seq/sub"
	attrParents   = "parents"    // lease: list of parent shard ids
	attrHandoff   = "handoff_to" // lease: requested new owner
	attrLag       = "lag_ms"     // lease: MillisBehindLatest at the last checkpoint (for people)
	attrUpdated   = "updated_at" // both: writer's wall clock, for people
	attrWorker    = "worker_id"  // worker: id
	attrHeartbeat = "heartbeat"  // worker: liveness counter
	attrHeld      = "held"       // worker: leases held at last heartbeat
	attrStopping  = "stopping"   // worker: shutting down

	shardPrefix  = "shard#"
	workerPrefix = "worker#"
)

// DynamoStore is the Store on a DynamoDB table. It is safe for concurrent use.
type DynamoStore struct {
	db    DynamoAPI
	table string
	now   func() time.Time
}

// NewDynamoStore returns a store on table.
func NewDynamoStore(db DynamoAPI, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table, now: time.Now}
}

// Table returns the table name.
func (s *DynamoStore) Table() string { return s.table }

// EnsureTable creates the table (on-demand billing) if missing and waits
// until it is ACTIVE. Creation races between workers started together are
// expected: ResourceInUseException means another worker created it.
func (s *DynamoStore) EnsureTable(ctx context.Context) error {
	_, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &s.table,
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create lease table %s: %w", s.table, err)
		}
	} else if err != nil {
		return fmt.Errorf("describe lease table %s: %w", s.table, err)
	}
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("wait for lease table %s: %w", s.table, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for lease table %s: %w", s.table, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Snapshot scans the whole table with strongly consistent reads.
func (s *DynamoStore) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	var start map[string]types.AttributeValue
	for {
		out, err := s.db.Scan(ctx, &dynamodb.ScanInput{TableName: &s.table, ConsistentRead: aws.Bool(true), ExclusiveStartKey: start})
		if err != nil {
			return Snapshot{}, fmt.Errorf("scan lease table %s: %w", s.table, err)
		}
		for _, it := range out.Items {
			k := str(it[attrKey])
			switch {
			case strings.HasPrefix(k, shardPrefix):
				snap.Leases = append(snap.Leases, decodeLease(it))
			case strings.HasPrefix(k, workerPrefix):
				snap.Workers = append(snap.Workers, decodeWorker(it))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return snap, nil
		}
		start = out.LastEvaluatedKey
	}
}

// Get reads one lease with a strongly consistent read.
func (s *DynamoStore) Get(ctx context.Context, shardID string) (Lease, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(shardPrefix + shardID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s: %w", shardID, err)
	}
	if len(out.Item) == 0 {
		return Lease{}, fmt.Errorf("get lease %s: %w", shardID, ErrNotFound)
	}
	return decodeLease(out.Item), nil
}

// Create puts a new lease if the shard has none.
func (s *DynamoStore) Create(ctx context.Context, l Lease) error {
	item := map[string]types.AttributeValue{
		attrKey:     &types.AttributeValueMemberS{Value: shardPrefix + l.ShardID},
		attrShard:   &types.AttributeValueMemberS{Value: l.ShardID},
		attrEpoch:   num(l.Epoch),
		attrSeq:     &types.AttributeValueMemberS{Value: l.Checkpoint.Position.Sequence},
		attrSub:     num(l.Checkpoint.Position.Sub),
		attrUpdated: s.stamp(),
	}
	if l.Owner != "" {
		item[attrOwner] = &types.AttributeValueMemberS{Value: l.Owner}
	}
	if len(l.Parents) > 0 {
		ps := make([]types.AttributeValue, len(l.Parents))
		for i, p := range l.Parents {
			ps[i] = &types.AttributeValueMemberS{Value: p}
		}
		item[attrParents] = &types.AttributeValueMemberL{Value: ps}
	}
	if len(l.Checkpoint.Sinks) > 0 {
		item[attrSinks] = sinksAttr(l.Checkpoint.Sinks)
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{
			"#k": attrKey,
		},
	})
	if isConditional(err) {
		return fmt.Errorf("create lease %s: %w", l.ShardID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create lease %s: %w", l.ShardID, err)
	}
	return nil
}

// Take moves the lease to owner if its epoch is unchanged.
func (s *DynamoStore) Take(ctx context.Context, shardID, owner string, epoch int64) (Lease, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 key(shardPrefix + shardID),
		UpdateExpression:    aws.String("SET #o = :o, #e = #e + :one, #u = :now REMOVE #h"),
		ConditionExpression: aws.String("#e = :e"),
		ExpressionAttributeNames: map[string]string{
			"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated, "#h": attrHandoff,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner}, ":one": num(1), ":e": num(epoch), ":now": s.stamp(),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if isConditional(err) {
		return Lease{}, fmt.Errorf("take lease %s at epoch %d: %w", shardID, epoch, ErrConflict)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("take lease %s: %w", shardID, err)
	}
	return decodeLease(out.Attributes), nil
}

// RequestHandoff records requester as the wanted next owner.
func (s *DynamoStore) RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 key(shardPrefix + shardID),
		UpdateExpression:    aws.String("SET #h = :r"),
		ConditionExpression: aws.String("#o = :o AND #e = :e AND attribute_not_exists(#h)"),
		ExpressionAttributeNames: map[string]string{
			"#o": attrOwner, "#e": attrEpoch, "#h": attrHandoff,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner}, ":e": num(epoch), ":r": &types.AttributeValueMemberS{Value: requester},
		},
	})
	if isConditional(err) {
		return fmt.Errorf("request handoff of %s: %w", shardID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("request handoff of %s: %w", shardID, err)
	}
	return nil
}

// CancelHandoff clears requester's pending request, if it is still there.
func (s *DynamoStore) CancelHandoff(ctx context.Context, shardID, requester string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(shardPrefix + shardID),
		UpdateExpression:          aws.String("REMOVE #h"),
		ConditionExpression:       aws.String("#h = :r"),
		ExpressionAttributeNames:  map[string]string{"#h": attrHandoff},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: requester}},
	})
	if err != nil && !isConditional(err) {
		return fmt.Errorf("cancel handoff of %s: %w", shardID, err)
	}
	return nil
}

// Transfer checkpoints and moves (or releases) the lease in one write.
func (s *DynamoStore) Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error) {
	set := "SET #e = #e + :one, #u = :now, #s = :seq, #b = :sub"
	remove := " REMOVE #h"
	names := map[string]string{"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated, "#s": attrSeq, "#b": attrSub, "#h": attrHandoff}
	vals := map[string]types.AttributeValue{
		":me": &types.AttributeValueMemberS{Value: owner}, ":e": num(epoch), ":one": num(1), ":now": s.stamp(),
		":seq": &types.AttributeValueMemberS{Value: cp.Position.Sequence}, ":sub": num(cp.Position.Sub),
	}
	if to != "" {
		set += ", #o = :to"
		vals[":to"] = &types.AttributeValueMemberS{Value: to}
	} else {
		remove += ", #o"
	}
	if len(cp.Sinks) > 0 {
		set += ", #k = :sinks"
		names["#k"] = attrSinks
		vals[":sinks"] = sinksAttr(cp.Sinks)
	}
	set += ", #lag = :lag"
	names["#lag"] = attrLag
	vals[":lag"] = num(cp.MillisBehind)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(shardPrefix + shardID),
		UpdateExpression:          aws.String(set + remove),
		ConditionExpression:       aws.String("#o = :me AND #e = :e"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if isConditional(err) {
		return 0, fmt.Errorf("transfer lease %s at epoch %d: %w", shardID, epoch, ErrLost)
	}
	if err != nil {
		return 0, fmt.Errorf("transfer lease %s: %w", shardID, err)
	}
	return numOf(out.Attributes[attrEpoch]), nil
}

// Checkpoint writes cp, fenced on owner and epoch.
func (s *DynamoStore) Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error {
	set := "SET #s = :seq, #b = :sub, #u = :now"
	names := map[string]string{"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated, "#s": attrSeq, "#b": attrSub}
	vals := map[string]types.AttributeValue{
		":me": &types.AttributeValueMemberS{Value: owner}, ":e": num(epoch), ":now": s.stamp(),
		":seq": &types.AttributeValueMemberS{Value: cp.Position.Sequence}, ":sub": num(cp.Position.Sub),
	}
	if len(cp.Sinks) > 0 {
		set += ", #k = :sinks"
		names["#k"] = attrSinks
		vals[":sinks"] = sinksAttr(cp.Sinks)
	}
	set += ", #lag = :lag"
	names["#lag"] = attrLag
	vals[":lag"] = num(cp.MillisBehind)
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(shardPrefix + shardID),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("#o = :me AND #e = :e"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	})
	if isConditional(err) {
		return fmt.Errorf("checkpoint %s at epoch %d: %w", shardID, epoch, ErrLost)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", shardID, err)
	}
	return nil
}

// Heartbeat increments the worker's liveness counter.
func (s *DynamoStore) Heartbeat(ctx context.Context, workerID string, held int, stopping bool) (int64, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(workerPrefix + workerID),
		UpdateExpression:         aws.String("SET #w = :w, #l = :held, #st = :st, #u = :now ADD #hb :one"),
		ExpressionAttributeNames: map[string]string{"#w": attrWorker, "#l": attrHeld, "#st": attrStopping, "#u": attrUpdated, "#hb": attrHeartbeat},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":w": &types.AttributeValueMemberS{Value: workerID}, ":held": num(int64(held)), ":st": &types.AttributeValueMemberBOOL{Value: stopping},
			":now": s.stamp(), ":one": num(1),
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("heartbeat %s: %w", workerID, err)
	}
	return numOf(out.Attributes[attrHeartbeat]), nil
}

// DeleteWorker removes the worker item.
func (s *DynamoStore) DeleteWorker(ctx context.Context, workerID string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(workerPrefix + workerID)})
	if err != nil {
		return fmt.Errorf("delete worker %s: %w", workerID, err)
	}
	return nil
}

// Delete removes a lease.
func (s *DynamoStore) Delete(ctx context.Context, shardID string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(shardPrefix + shardID)})
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", shardID, err)
	}
	return nil
}

func (s *DynamoStore) stamp() types.AttributeValue {
	return &types.AttributeValueMemberS{Value: s.now().UTC().Format(time.RFC3339Nano)}
}

func key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: k}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numOf(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		x, _ := strconv.ParseInt(n.Value, 10, 64)
		return x
	}
	return 0
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func sinksAttr(m map[string]checkpoint.Position) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, p := range m {
		out[k] = &types.AttributeValueMemberS{Value: p.String()}
	}
	return &types.AttributeValueMemberM{Value: out}
}

func decodeLease(it map[string]types.AttributeValue) Lease {
	l := Lease{
		ShardID:   str(it[attrShard]),
		Owner:     str(it[attrOwner]),
		Epoch:     numOf(it[attrEpoch]),
		HandoffTo: str(it[attrHandoff]),
		Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{
			Sequence: str(it[attrSeq]), Sub: numOf(it[attrSub]),
		}, MillisBehind: numOf(it[attrLag])},
	}
	l.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str(it[attrUpdated]))
	if ps, ok := it[attrParents].(*types.AttributeValueMemberL); ok {
		for _, p := range ps.Value {
			l.Parents = append(l.Parents, str(p))
		}
	}
	if m, ok := it[attrSinks].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 {
		l.Checkpoint.Sinks = make(map[string]checkpoint.Position, len(m.Value))
		for k, v := range m.Value {
			if p, err := checkpoint.Parse(str(v)); err == nil {
				l.Checkpoint.Sinks[k] = p
			}
		}
	}
	return l
}

func decodeWorker(it map[string]types.AttributeValue) Worker {
	w := Worker{ID: str(it[attrWorker]), Heartbeat: numOf(it[attrHeartbeat]), Held: int(numOf(it[attrHeld]))}
	if b, ok := it[attrStopping].(*types.AttributeValueMemberBOOL); ok {
		w.Stopping = b.Value
	}
	w.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str(it[attrUpdated]))
	return w
}

func isConditional(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}
