package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/backoff"
)

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Attribute names of the lease table; docs/LEASES.md describes each.
const (
	attrPK         = "pk"         // partition key: "shard#<id>" (a lease) or "fleet" (workers and the generation)
	attrSK         = "sk"         // sort key: "lease", "worker#<identity>" or "generation"
	attrShard      = "shard_id"   // lease: the shard
	attrOwner      = "owner"      // lease: holding worker incarnation, absent when unowned
	attrEpoch      = "epoch"      // lease: ownership counter
	attrSeq        = "cp_seq"     // lease: checkpoint sequence or sentinel
	attrSub        = "cp_sub"     // lease: checkpoint sub-sequence
	attrSinks      = "cp_sinks"   // lease: map sink -> "seq/sub"
	attrParents    = "parents"    // lease: list of parent shard ids
	attrHandoff    = "handoff_to" // lease: requested new owner
	attrLag        = "lag_ms"     // lease: MillisBehindLatest at the last checkpoint (for people)
	attrUpdated    = "updated_at" // all: writer's wall clock, for people
	attrWorker     = "worker_id"  // worker: configured id
	attrHeartbeat  = "heartbeat"  // worker: liveness counter
	attrHeld       = "held"       // worker: leases held at last heartbeat
	attrStopping   = "stopping"   // worker: shutting down
	attrDead       = "dead"       // worker: declared dead by a peer
	attrInbox      = "inbox"      // worker: bumped by peers that asked it for a lease
	attrGeneration = "generation" // fleet: bumped on every change peers react to

	shardPrefix    = "shard#"
	leaseSort      = "lease"
	fleetPartition = "fleet"
	workerPrefix   = "worker#"
	generationSort = "generation"

	// oldKeyAttr is the hash key of the table before worker items moved
	// into one partition (single-key schema); such a table is refused.
	oldKeyAttr = "key"
)

// DynamoStore is the Store on a DynamoDB table. It asks DynamoDB for the
// capacity every call consumed and keeps the total (Units). It is safe for
// concurrent use.
type DynamoStore struct {
	db    DynamoAPI
	table string
	now   func() time.Time

	readHalves atomic.Int64 // read request units × 2
	writeUnits atomic.Int64
	// fleetBytes is the fleet partition's size (the generation and every
	// worker item, as DynamoDB bills them) at the last scan or query of
	// it, 0 before one: Poll reads it with a Query when that is cheaper.
	fleetBytes atomic.Int64
}

// NewDynamoStore returns a store on table. It refuses a nil db and an
// empty table name, naming each. It makes no call: the table is created
// (or found) by EnsureTable.
func NewDynamoStore(db DynamoAPI, table string) (*DynamoStore, error) {
	s := &DynamoStore{db: db, table: table, now: time.Now}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// check reports a store that cannot make a call: one NewDynamoStore
// refused, or a zero DynamoStore, which NewCoordinator (and worker.New)
// refuse before any call.
func (s *DynamoStore) check() error {
	var errs []error
	if s.db == nil {
		errs = append(errs, errors.New("lease: the DynamoDB client of the lease store is nil"))
	}
	if s.table == "" {
		errs = append(errs, errors.New("lease: the lease store's table name is empty"))
	}
	return errors.Join(errs...)
}

// Table returns the table name.
func (s *DynamoStore) Table() string { return s.table }

// Units returns the capacity consumed by this store's calls so far, as
// DynamoDB reported it (a failed conditional write counts one write unit,
// as DynamoDB bills it).
func (s *DynamoStore) Units() Units {
	return Units{Read: float64(s.readHalves.Load()) / 2, Write: float64(s.writeUnits.Load())}
}

func (s *DynamoStore) addRead(cc *types.ConsumedCapacity) {
	if cc != nil && cc.CapacityUnits != nil {
		s.readHalves.Add(int64(*cc.CapacityUnits*2 + 0.5))
	}
}

func (s *DynamoStore) addWrite(cc *types.ConsumedCapacity, err error) {
	switch {
	case cc != nil && cc.CapacityUnits != nil:
		s.writeUnits.Add(int64(*cc.CapacityUnits + 0.5))
	case isConditional(err):
		s.writeUnits.Add(1)
	}
}

const total = types.ReturnConsumedCapacityTotal

// EnsureTable creates the table (on-demand billing) if missing and waits
// until it is ACTIVE. Creation races between workers started together are
// expected: ResourceInUseException means another worker created it. A
// table whose key is not this version's (partition key pk, sort key sk) —
// one written by an earlier version, keyed on "key" alone — is refused
// with ErrTableSchema, before any item is read or written.
func (s *DynamoStore) EnsureTable(ctx context.Context) error {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   &s.table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create lease table %s: %w", s.table, err)
		}
	} else if err != nil {
		return fmt.Errorf("describe lease table %s: %w", s.table, err)
	} else if err := s.checkSchema(out.Table); err != nil {
		return err
	}
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			return s.checkSchema(out.Table)
		}
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("wait for lease table %s: %w", s.table, err)
		}
		if err := backoff.Sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("wait for lease table %s: %w", s.table, err)
		}
	}
}

// ErrTableSchema: the lease table exists with a key schema this version
// cannot use (a table created by an earlier version).
var ErrTableSchema = errors.New("lease: the lease table's key schema is not this version's")

// checkSchema refuses a table whose key is not (pk HASH, sk RANGE), saying
// what it found and what to do.
func (s *DynamoStore) checkSchema(t *types.TableDescription) error {
	if t == nil {
		return nil
	}
	var hash, rng string
	for _, k := range t.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	if hash == attrPK && rng == attrSK {
		return nil
	}
	found := fmt.Sprintf("hash key %q", hash)
	if rng != "" {
		found += fmt.Sprintf(" and range key %q", rng)
	}
	what := "use a new table (lease.table) or delete this one"
	if hash == oldKeyAttr && rng == "" {
		what = fmt.Sprintf("it was created by an earlier version of leasehold. Stop the old workers (they release their leases), "+
			"then copy the checkpoints into a new table with `leasehold leases migrate --from %s` and set lease.table to the new table "+
			"(or delete %s to start over from each shard's initial position)", s.table, s.table)
	}
	return fmt.Errorf("%w: lease table %s has %s, this version needs hash key %q and range key %q: %s (see docs/LEASES.md, \"Upgrading\")",
		ErrTableSchema, s.table, found, attrPK, attrSK, what)
}

// Snapshot scans the whole table with eventually consistent reads (half
// the price of strongly consistent ones; every decision taken from it is a
// conditional write that re-checks the item). It notes the fleet
// partition's size for Poll.
func (s *DynamoStore) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	var start map[string]types.AttributeValue
	for {
		out, err := s.db.Scan(ctx, &dynamodb.ScanInput{TableName: &s.table, ExclusiveStartKey: start, ReturnConsumedCapacity: total})
		if err != nil {
			return Snapshot{}, fmt.Errorf("scan lease table %s: %w", s.table, err)
		}
		s.addRead(out.ConsumedCapacity)
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			snap.ReadUnits += *out.ConsumedCapacity.CapacityUnits
		}
		for _, it := range out.Items {
			if err := s.oldItem(it); err != nil {
				return Snapshot{}, err
			}
			if str(it[attrPK]) == fleetPartition {
				snap.FleetBytes += itemBytes(it)
			}
			decodeInto(it, &snap.Leases, &snap.Workers, &snap.Generation)
		}
		if len(out.LastEvaluatedKey) == 0 {
			s.fleetBytes.Store(int64(snap.FleetBytes))
			return snap, nil
		}
		start = out.LastEvaluatedKey
	}
}

// oldItem refuses an item of the single-key schema: a reader that did not
// call EnsureTable (leasehold leases, the explorer) must not show an
// earlier version's table as empty.
func (s *DynamoStore) oldItem(it map[string]types.AttributeValue) error {
	if _, ok := it[attrPK]; !ok {
		if _, old := it[oldKeyAttr]; old {
			return s.checkSchema(&types.TableDescription{KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(oldKeyAttr), KeyType: types.KeyTypeHash}}})
		}
	}
	return nil
}

// Poll reads the generation, the named worker items (own identity first,
// then the ring successors, in ring order) and the named leases,
// eventually consistent. The generation and worker items live in one
// partition sorted by identity: they are read as PlanPoll chooses — the
// whole partition in one Query while that is cheapest (half a unit up to
// about 40 workers), else a Query of the identities from the caller's to
// its last successor (two at the ring's wrap) — leaving out the workers
// not asked for, or item by item. What remains (leases, and the
// generation or workers not queried) is one BatchGetItem (retrying
// unprocessed keys).
func (s *DynamoStore) Poll(ctx context.Context, workers, shards []string) (Polled, error) {
	var p Polled
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	add := func(kind itemKind, id string) {
		pk, sk := keyParts(kind, id)
		if !seen[pk+"\x00"+sk] && len(keys) < 100 {
			seen[pk+"\x00"+sk] = true
			keys = append(keys, key(kind, id))
		}
	}
	asked := map[string]bool{}
	for _, w := range workers {
		asked[w] = true
	}
	plan := PlanPoll(int(s.fleetBytes.Load()), workers)
	if plan.Whole {
		if err := s.queryFleet(ctx, asked, nil, &p); err != nil {
			return Polled{}, err
		}
	}
	for _, r := range plan.Ranges {
		if err := s.queryFleet(ctx, asked, &r, &p); err != nil {
			return Polled{}, err
		}
	}
	if plan.Generation {
		add(generationItem, "")
	}
	for _, w := range plan.Workers {
		add(workerItem, w)
	}
	for _, sh := range shards {
		add(leaseItem, sh)
	}
	if len(keys) == 0 {
		return p, nil
	}
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys}}
	for len(req) > 0 {
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req, ReturnConsumedCapacity: total})
		if err != nil {
			return Polled{}, fmt.Errorf("poll lease table %s: %w", s.table, err)
		}
		for _, cc := range out.ConsumedCapacity {
			s.addRead(&cc)
			if cc.CapacityUnits != nil {
				p.ReadUnits += *cc.CapacityUnits
			}
		}
		for _, it := range out.Responses[s.table] {
			decodeInto(it, &p.Leases, &p.Workers, &p.Generation)
		}
		req = out.UnprocessedKeys
		if len(req) > 0 {
			if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
				return Polled{}, fmt.Errorf("poll lease table %s: %w", s.table, err)
			}
		}
	}
	return p, nil
}

// queryFleet reads the fleet partition — all of it (r nil), or the
// identities in r — with one eventually consistent Query (paged, should it
// ever exceed 1 MB) into p, keeping the generation and the asked workers.
// A query of all of it notes the partition's size.
func (s *DynamoStore) queryFleet(ctx context.Context, asked map[string]bool, r *IdentityRange, p *Polled) error {
	cond := "#pk = :fleet"
	names := map[string]string{"#pk": attrPK}
	vals := map[string]types.AttributeValue{":fleet": sv(fleetPartition)}
	if r != nil {
		from := generationSort
		if r.From != "" {
			_, from = keyParts(workerItem, r.From)
		}
		vals[":from"] = sv(from)
		names["#sk"] = attrSK
		if r.To == "" {
			cond += " AND #sk >= :from"
		} else {
			_, to := keyParts(workerItem, r.To)
			cond += " AND #sk BETWEEN :from AND :to"
			vals[":to"] = sv(to)
		}
	}
	var start map[string]types.AttributeValue
	bytes := 0
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &s.table,
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
			ExclusiveStartKey:         start,
			ReturnConsumedCapacity:    total,
		})
		if err != nil {
			return fmt.Errorf("poll lease table %s: %w", s.table, err)
		}
		s.addRead(out.ConsumedCapacity)
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			p.ReadUnits += *out.ConsumedCapacity.CapacityUnits
		}
		for _, it := range out.Items {
			bytes += itemBytes(it)
			if sk := str(it[attrSK]); sk == generationSort || asked[strings.TrimPrefix(sk, workerPrefix)] {
				decodeInto(it, &p.Leases, &p.Workers, &p.Generation)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			if r == nil {
				s.fleetBytes.Store(int64(bytes))
				p.FleetBytes = bytes
			}
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

func decodeInto(it map[string]types.AttributeValue, leases *[]Lease, workers *[]Worker, gen *int64) {
	pk, sk := str(it[attrPK]), str(it[attrSK])
	switch {
	case strings.HasPrefix(pk, shardPrefix):
		*leases = append(*leases, decodeLease(it))
	case pk != fleetPartition:
	case strings.HasPrefix(sk, workerPrefix):
		*workers = append(*workers, decodeWorker(it))
	case sk == generationSort:
		*gen = numOf(it[attrGeneration])
	}
}

// Get reads one lease with a strongly consistent read.
func (s *DynamoStore) Get(ctx context.Context, shardID string) (Lease, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(leaseItem, shardID), ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: total})
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s: %w", shardID, err)
	}
	s.addRead(out.ConsumedCapacity)
	if len(out.Item) == 0 {
		return Lease{}, fmt.Errorf("get lease %s: %w", shardID, ErrNotFound)
	}
	return decodeLease(out.Item), nil
}

// Create puts a new lease if the shard has none.
func (s *DynamoStore) Create(ctx context.Context, l Lease) error {
	l.UpdatedAt = s.now()
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                &s.table,
		Item:                     encodeLease(l),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": attrPK},
		ReturnConsumedCapacity:   total,
	})
	s.addWrite(consumed(out, func(o *dynamodb.PutItemOutput) *types.ConsumedCapacity { return o.ConsumedCapacity }), err)
	if isConditional(err) {
		return fmt.Errorf("create lease %s: %w", l.ShardID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create lease %s: %w", l.ShardID, err)
	}
	return nil
}

// update runs one UpdateItem and counts its capacity.
func (s *DynamoStore) update(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = total
	out, err := s.db.UpdateItem(ctx, in)
	s.addWrite(consumed(out, func(o *dynamodb.UpdateItemOutput) *types.ConsumedCapacity { return o.ConsumedCapacity }), err)
	return out, err
}

func (s *DynamoStore) delete(ctx context.Context, in *dynamodb.DeleteItemInput) error {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = total
	out, err := s.db.DeleteItem(ctx, in)
	s.addWrite(consumed(out, func(o *dynamodb.DeleteItemOutput) *types.ConsumedCapacity { return o.ConsumedCapacity }), err)
	return err
}

func consumed[T any](out *T, f func(*T) *types.ConsumedCapacity) *types.ConsumedCapacity {
	if out == nil {
		return nil
	}
	return f(out)
}

// Take moves the lease to owner if its epoch is unchanged.
func (s *DynamoStore) Take(ctx context.Context, shardID, owner string, epoch int64) (Lease, error) {
	out, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                 key(leaseItem, shardID),
		UpdateExpression:    aws.String("SET #o = :o, #e = #e + :one, #u = :now"),
		ConditionExpression: aws.String("#e = :e"),
		ExpressionAttributeNames: map[string]string{
			"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": sv(owner), ":one": num(1), ":e": num(epoch), ":now": s.stamp(),
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
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                 key(leaseItem, shardID),
		UpdateExpression:    aws.String("SET #h = :r"),
		ConditionExpression: aws.String("#o = :o AND #e = :e AND attribute_not_exists(#h)"),
		ExpressionAttributeNames: map[string]string{
			"#o": attrOwner, "#e": attrEpoch, "#h": attrHandoff,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": sv(owner), ":e": num(epoch), ":r": sv(requester)},
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
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(leaseItem, shardID),
		UpdateExpression:          aws.String("REMOVE #h"),
		ConditionExpression:       aws.String("#h = :r"),
		ExpressionAttributeNames:  map[string]string{"#h": attrHandoff},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": sv(requester)},
	})
	if err != nil && !isConditional(err) {
		return fmt.Errorf("cancel handoff of %s: %w", shardID, err)
	}
	return nil
}

// Transfer checkpoints and moves (or releases) the lease in one write.
func (s *DynamoStore) Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error) {
	set := "SET #e = #e + :one, #u = :now, #s = :seq, #b = :sub, #lag = :lag"
	remove := " REMOVE #h"
	cond := "#o = :me AND #e = :e"
	names := map[string]string{"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated, "#s": attrSeq, "#b": attrSub, "#h": attrHandoff, "#lag": attrLag}
	vals := map[string]types.AttributeValue{
		":me": sv(owner), ":e": num(epoch), ":one": num(1), ":now": s.stamp(),
		":seq": sv(cp.Position.Sequence), ":sub": num(cp.Position.Sub), ":lag": num(cp.MillisBehind),
	}
	if to != "" {
		set += ", #o = :to"
		cond += " AND #h = :to"
		vals[":to"] = sv(to)
	} else {
		remove += ", #o"
	}
	if len(cp.Sinks) > 0 {
		set += ", #k = :sinks"
		names["#k"] = attrSinks
		vals[":sinks"] = sinksAttr(cp.Sinks)
	}
	out, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(leaseItem, shardID),
		UpdateExpression:          aws.String(set + remove),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if isConditional(err) {
		if to != "" {
			// Which part failed? Still ours at epoch: the request was withdrawn.
			if l, gerr := s.Get(ctx, shardID); gerr == nil && l.Owner == owner && l.Epoch == epoch {
				return 0, fmt.Errorf("hand lease %s to %s: request withdrawn: %w", shardID, to, ErrConflict)
			}
		}
		return 0, fmt.Errorf("transfer lease %s at epoch %d: %w", shardID, epoch, ErrLost)
	}
	if err != nil {
		return 0, fmt.Errorf("transfer lease %s: %w", shardID, err)
	}
	return numOf(out.Attributes[attrEpoch]), nil
}

// Checkpoint writes cp, fenced on owner and epoch.
func (s *DynamoStore) Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error {
	set := "SET #s = :seq, #b = :sub, #u = :now, #lag = :lag"
	names := map[string]string{"#o": attrOwner, "#e": attrEpoch, "#u": attrUpdated, "#s": attrSeq, "#b": attrSub, "#lag": attrLag}
	vals := map[string]types.AttributeValue{
		":me": sv(owner), ":e": num(epoch), ":now": s.stamp(),
		":seq": sv(cp.Position.Sequence), ":sub": num(cp.Position.Sub), ":lag": num(cp.MillisBehind),
	}
	if len(cp.Sinks) > 0 {
		set += ", #k = :sinks"
		names["#k"] = attrSinks
		vals[":sinks"] = sinksAttr(cp.Sinks)
	}
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(leaseItem, shardID),
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

// Heartbeat increments the worker's liveness counter unless a peer
// declared it dead.
func (s *DynamoStore) Heartbeat(ctx context.Context, id, name string, held int, stopping, first bool) (int64, error) {
	names := map[string]string{"#w": attrWorker, "#l": attrHeld, "#st": attrStopping, "#u": attrUpdated, "#hb": attrHeartbeat, "#d": attrDead}
	cond := "attribute_not_exists(#d)"
	if !first {
		cond += " AND attribute_exists(#k)"
		names["#k"] = attrPK
	}
	out, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                      key(workerItem, id),
		UpdateExpression:         aws.String("SET #w = :w, #l = :held, #st = :st, #u = :now ADD #hb :one"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":w": sv(name), ":held": num(int64(held)), ":st": &types.AttributeValueMemberBOOL{Value: stopping},
			":now": s.stamp(), ":one": num(1),
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if isConditional(err) {
		return 0, fmt.Errorf("heartbeat %s: %w", id, ErrDeclaredDead)
	}
	if err != nil {
		return 0, fmt.Errorf("heartbeat %s: %w", id, err)
	}
	return numOf(out.Attributes[attrHeartbeat]), nil
}

// MarkDead declares id dead if its counter has not moved (or, counter < 0,
// if it still has no item).
func (s *DynamoStore) MarkDead(ctx context.Context, id string, counter int64) error {
	var err error
	if counter < 0 {
		var out *dynamodb.PutItemOutput
		out, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                &s.table,
			Item:                     encodeWorker(Worker{ID: id, Name: WorkerName(id), Dead: true, UpdatedAt: s.now()}),
			ConditionExpression:      aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": attrPK},
			ReturnConsumedCapacity:   total,
		})
		s.addWrite(consumed(out, func(o *dynamodb.PutItemOutput) *types.ConsumedCapacity { return o.ConsumedCapacity }), err)
	} else {
		_, err = s.update(ctx, &dynamodb.UpdateItemInput{
			Key:                       key(workerItem, id),
			UpdateExpression:          aws.String("SET #d = :t, #u = :now"),
			ConditionExpression:       aws.String("#hb = :c AND attribute_not_exists(#d)"),
			ExpressionAttributeNames:  map[string]string{"#d": attrDead, "#u": attrUpdated, "#hb": attrHeartbeat},
			ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}, ":now": s.stamp(), ":c": num(counter)},
		})
	}
	if isConditional(err) {
		return fmt.Errorf("declare %s dead: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("declare %s dead: %w", id, err)
	}
	return nil
}

// DeleteWorker removes the worker item.
func (s *DynamoStore) DeleteWorker(ctx context.Context, id string) error {
	if err := s.delete(ctx, &dynamodb.DeleteItemInput{Key: key(workerItem, id)}); err != nil {
		return fmt.Errorf("delete worker %s: %w", id, err)
	}
	return nil
}

// DeleteDeadWorker removes a worker item marked dead.
func (s *DynamoStore) DeleteDeadWorker(ctx context.Context, id string) error {
	err := s.delete(ctx, &dynamodb.DeleteItemInput{
		Key:                       key(workerItem, id),
		ConditionExpression:       aws.String("#d = :t"),
		ExpressionAttributeNames:  map[string]string{"#d": attrDead},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	if isConditional(err) {
		return fmt.Errorf("delete dead worker %s: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete dead worker %s: %w", id, err)
	}
	return nil
}

// Delete removes an ended lease.
func (s *DynamoStore) Delete(ctx context.Context, shardID string) error {
	err := s.delete(ctx, &dynamodb.DeleteItemInput{
		Key:                       key(leaseItem, shardID),
		ConditionExpression:       aws.String("#s = :end"),
		ExpressionAttributeNames:  map[string]string{"#s": attrSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": sv(checkpoint.ShardEnd)},
	})
	if isConditional(err) {
		return fmt.Errorf("delete lease %s: not ended: %w", shardID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", shardID, err)
	}
	return nil
}

// Bump increments the fleet generation.
func (s *DynamoStore) Bump(ctx context.Context) (int64, error) {
	out, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(generationItem, ""),
		UpdateExpression:          aws.String("ADD #g :one"),
		ExpressionAttributeNames:  map[string]string{"#g": attrGeneration},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("bump fleet generation: %w", err)
	}
	return numOf(out.Attributes[attrGeneration]), nil
}

// Notify bumps the worker's inbox, if it has an item.
func (s *DynamoStore) Notify(ctx context.Context, id string) error {
	_, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(workerItem, id),
		UpdateExpression:          aws.String("ADD #i :one"),
		ConditionExpression:       aws.String("attribute_exists(#k)"),
		ExpressionAttributeNames:  map[string]string{"#i": attrInbox, "#k": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
	})
	if err != nil && !isConditional(err) {
		return fmt.Errorf("notify %s: %w", id, err)
	}
	return nil
}

func (s *DynamoStore) stamp() types.AttributeValue {
	return sv(s.now().UTC().Format(time.RFC3339Nano))
}

func isConditional(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}
