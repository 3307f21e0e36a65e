// Package producertest provides fakes for testing code that uses package
// producer: an in-memory Kinesis that implements producer.KinesisAPI and
// checks the PutRecords limits, and a manual clock.
package producertest

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/leasehold/leasehold/kpl"
)

// Shard is one fake shard's slice of the hash ring.
type Shard struct {
	ID         string
	Start, End kpl.HashKey
}

// Written is one Kinesis record the fake stored.
type Written struct {
	ShardID, SequenceNumber string
	PartitionKey            string
	ExplicitHashKey         string
	Data                    []byte
}

// Call describes one PutRecords call the fake received.
type Call struct {
	Entries int
	Bytes   int            // data plus partition keys
	ByShard map[string]int // bytes per shard the entries route to
	Err     error          // what the fake returned for the whole call
}

// UserRecord is a user record recovered from what was written.
type UserRecord struct {
	ShardID, SequenceNumber string
	kpl.UserRecord
}

// Kinesis is an in-memory stream. It routes records by hash key like
// Kinesis, enforces the PutRecords limits (500 records, 5 MiB per call,
// 1 MiB per record, partition keys of 1–256 characters) by failing the
// call with ValidationException, and lets tests inject failures. Its
// methods are safe for concurrent use; set the hook fields before the
// first call.
type Kinesis struct {
	// CallError, if set, is asked before each PutRecords call (0-based
	// count); a non-nil error fails the whole call and nothing is written.
	CallError func(call int) error
	// EntryError, if set, is asked for each entry of a call that got
	// through; a non-empty code fails that entry (not written) with it.
	EntryError func(call, entry int, shardID string) string
	// Hold, if set, makes each PutRecords wait until Hold is closed or
	// ctx ends; on ctx's end it returns ctx's error and writes nothing.
	Hold chan struct{}
	// ListShardsError, if set, is returned by ListShards.
	ListShardsError error
	// Discard, if set, makes the fake count written records without
	// keeping them or the calls (for benchmarks).
	Discard bool

	mu      sync.Mutex
	shards  []Shard
	seq     int
	calls   []Call
	ncalls  int
	written []Written
}

// NewKinesis returns a stream of n shards splitting the hash ring evenly,
// named shardId-000000000000 and up.
func NewKinesis(n int) *Kinesis {
	k := &Kinesis{}
	k.SetShards(n)
	return k
}

// SetShards replaces the shard map with n even shards numbered from the
// next free id, as a reshard would.
func (k *Kinesis) SetShards(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	base := 0
	if len(k.shards) > 0 {
		fmt.Sscanf(k.shards[len(k.shards)-1].ID, "shardId-%d", &base)
		base++
	}
	ring := new(big.Int).Lsh(big.NewInt(1), 128)
	k.shards = nil
	for i := range n {
		start := new(big.Int).Div(new(big.Int).Mul(ring, big.NewInt(int64(i))), big.NewInt(int64(n)))
		end := new(big.Int).Div(new(big.Int).Mul(ring, big.NewInt(int64(i+1))), big.NewInt(int64(n)))
		end.Sub(end, big.NewInt(1))
		s, _ := kpl.ParseHashKey(start.String())
		e, _ := kpl.ParseHashKey(end.String())
		k.shards = append(k.shards, Shard{ID: fmt.Sprintf("shardId-%012d", base+i), Start: s, End: e})
	}
}

// Shards returns the current shard map.
func (k *Kinesis) Shards() []Shard {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Shard(nil), k.shards...)
}

// ShardFor returns the id of the shard that owns hash key h.
func (k *Kinesis) ShardFor(h kpl.HashKey) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.shardForLocked(h)
}

func (k *Kinesis) shardForLocked(h kpl.HashKey) string {
	i := sort.Search(len(k.shards), func(i int) bool { return k.shards[i].End.Cmp(h) >= 0 })
	return k.shards[min(i, len(k.shards)-1)].ID
}

func validation(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

// PutRecords stores the entries that neither hook fails and answers like
// Kinesis, one result per entry in order.
func (k *Kinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if k.Hold != nil {
		select {
		case <-k.Hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.ncalls
	k.ncalls++
	call := Call{Entries: len(in.Records), ByShard: map[string]int{}}
	route := make([]string, len(in.Records))
	for i, e := range in.Records {
		pk := aws.ToString(e.PartitionKey)
		size := len(pk) + len(e.Data)
		call.Bytes += size
		h, err := kpl.EffectiveHashKey(pk, aws.ToString(e.ExplicitHashKey))
		if err == nil {
			err = kpl.ValidatePartitionKey(pk)
		}
		if err != nil {
			call.Err = validation("record %d: %v", i, err)
			break
		}
		if e.Data == nil {
			call.Err = validation("record %d: Data is required", i)
			break
		}
		if size > kpl.MaxRecordBytes {
			call.Err = validation("record %d: %d bytes exceeds 1 MiB", i, size)
			break
		}
		route[i] = k.shardForLocked(h)
		call.ByShard[route[i]] += size
	}
	switch {
	case call.Err != nil:
	case len(in.Records) == 0 || len(in.Records) > 500:
		call.Err = validation("%d records; must be 1 to 500", len(in.Records))
	case call.Bytes > 5<<20:
		call.Err = validation("%d bytes exceeds 5 MiB", call.Bytes)
	case k.CallError != nil:
		call.Err = k.CallError(n)
	}
	if !k.Discard {
		k.calls = append(k.calls, call)
	}
	if call.Err != nil {
		return nil, call.Err
	}
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	failed := int32(0)
	for i, e := range in.Records {
		if k.EntryError != nil {
			if code := k.EntryError(n, i, route[i]); code != "" {
				out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected by producertest")}
				failed++
				continue
			}
		}
		k.seq++
		seq := fmt.Sprintf("%056d", k.seq)
		if !k.Discard {
			k.written = append(k.written, Written{
				ShardID: route[i], SequenceNumber: seq,
				PartitionKey: aws.ToString(e.PartitionKey), ExplicitHashKey: aws.ToString(e.ExplicitHashKey),
				Data: append([]byte(nil), e.Data...),
			})
		}
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(route[i]), SequenceNumber: aws.String(seq)}
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

// ListShards returns the current shards, all open, in one page.
func (k *Kinesis) ListShards(ctx context.Context, _ *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if k.ListShardsError != nil {
		return nil, k.ListShardsError
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := &kinesis.ListShardsOutput{}
	for _, s := range k.shards {
		out.Shards = append(out.Shards, types.Shard{
			ShardId:             aws.String(s.ID),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(s.Start.String()), EndingHashKey: aws.String(s.End.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		})
	}
	return out, nil
}

// Calls returns the PutRecords calls received so far.
func (k *Kinesis) Calls() []Call {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Call(nil), k.calls...)
}

// Count returns how many Kinesis records were written, kept or not.
func (k *Kinesis) Count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seq
}

// Written returns the Kinesis records stored, in write order.
func (k *Kinesis) Written() []Written {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Written(nil), k.written...)
}

// UserRecords deaggregates everything written, in write order, filling in
// the partition key of records that were not aggregated.
func (k *Kinesis) UserRecords() ([]UserRecord, error) {
	var out []UserRecord
	for _, w := range k.Written() {
		recs, err := kpl.Deaggregate(w.Data)
		if err != nil {
			return nil, fmt.Errorf("record %s/%s: %w", w.ShardID, w.SequenceNumber, err)
		}
		for _, r := range recs {
			if !r.Aggregated {
				r.PartitionKey, r.ExplicitHashKey = w.PartitionKey, w.ExplicitHashKey
			}
			out = append(out, UserRecord{ShardID: w.ShardID, SequenceNumber: w.SequenceNumber, UserRecord: r})
		}
	}
	return out, nil
}
