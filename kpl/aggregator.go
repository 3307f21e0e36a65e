package kpl

import (
	"crypto/md5"
	"fmt"
	"unicode/utf8"
)

// Config tunes an Aggregator. Zero fields take the defaults documented on
// each field.
type Config struct {
	// MaxBytes caps the size of the Kinesis record an aggregate becomes:
	// its partition key plus its data (magic, protobuf message, digest).
	// Default MaxRecordBytes (1 MiB), the Kinesis per-record limit; at most
	// 10 MiB, the largest record size a stream can be configured for.
	MaxBytes int
	// MaxRecords caps the number of user records in one aggregate.
	// Default 0: no cap besides MaxBytes.
	MaxRecords int
}

const (
	minConfigBytes = 64
	maxConfigBytes = 10 << 20
)

// defaults fills zero fields.
func (c *Config) defaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = MaxRecordBytes
	}
}

// Validate reports a setting out of range, after defaults are applied.
func (c Config) Validate() error {
	c.defaults()
	if c.MaxBytes < minConfigBytes || c.MaxBytes > maxConfigBytes {
		return fmt.Errorf("kpl: MaxBytes %d out of range [%d, %d]", c.MaxBytes, minConfigBytes, maxConfigBytes)
	}
	if c.MaxRecords < 0 {
		return fmt.Errorf("kpl: MaxRecords %d is negative", c.MaxRecords)
	}
	return nil
}

// Record is one aggregated Kinesis record ready for PutRecords.
type Record struct {
	// PartitionKey is the partition key to send: the first user record's.
	PartitionKey string
	// ExplicitHashKey is the first user record's explicit hash key, or ""
	// when it had none. Sending it keeps the aggregate on the shard the
	// first user record maps to.
	ExplicitHashKey string
	// Data is the encoded aggregate: magic, protobuf message, MD5.
	Data []byte
	// Count is the number of user records inside.
	Count int
}

// Size is the record's size as Kinesis counts it: data plus partition key.
func (r Record) Size() int { return len(r.PartitionKey) + len(r.Data) }

// subRecord is an added user record, by table index. ehk is the explicit
// hash key index plus one, 0 meaning none.
type subRecord struct {
	pk, ehk uint64
	data    []byte
}

// Aggregator packs user records into KPL aggregated records. It keeps a
// reference to each added data slice until Drain or Reset: callers must not
// modify the slices in between.
//
// An Aggregator is not safe for concurrent use.
type Aggregator struct {
	cfg Config

	pks      []string
	pkIndex  map[string]uint64
	ehks     []string
	ehkIndex map[string]uint64
	recs     []subRecord
	// msgSize is the exact size of the protobuf message encoding pks, ehks
	// and recs.
	msgSize int
}

// NewAggregator returns an empty Aggregator. The error reports an invalid
// cfg (see Config.Validate).
func NewAggregator(cfg Config) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Aggregator{
		cfg:      cfg,
		pkIndex:  make(map[string]uint64),
		ehkIndex: make(map[string]uint64),
	}, nil
}

// Count returns the number of user records in the current aggregate.
func (a *Aggregator) Count() int { return len(a.recs) }

// Size returns the exact size, as Kinesis counts it (partition key plus
// data), of the record Drain would return now; 0 when empty.
func (a *Aggregator) Size() int {
	if len(a.recs) == 0 {
		return 0
	}
	return len(a.pks[a.recs[0].pk]) + Overhead + a.msgSize
}

// SizeWith returns what Size would be after adding a user record with this
// partition key, explicit hash key ("" for none) and data length. It does
// not validate the keys; it lets a caller fill an aggregate to the byte.
func (a *Aggregator) SizeWith(partitionKey, explicitHashKey string, dataLen int) int {
	delta, _, _ := a.delta(partitionKey, explicitHashKey, dataLen)
	if len(a.recs) == 0 {
		return len(partitionKey) + Overhead + delta
	}
	return a.Size() + delta
}

// delta returns how much the protobuf message grows by adding the record,
// and the table indexes the record would get.
func (a *Aggregator) delta(pk, ehk string, dataLen int) (grow int, pkIdx, ehkIdx uint64) {
	pkIdx, ok := a.pkIndex[pk]
	if !ok {
		pkIdx = uint64(len(a.pks))
		grow += sizeBytesField(len(pk))
	}
	inner := 1 + sizeVarint(pkIdx) + sizeBytesField(dataLen)
	if ehk != "" {
		idx, ok := a.ehkIndex[ehk]
		if !ok {
			idx = uint64(len(a.ehks))
			grow += sizeBytesField(len(ehk))
		}
		ehkIdx = idx + 1
		inner += 1 + sizeVarint(idx)
	}
	grow += sizeBytesField(inner)
	return grow, pkIdx, ehkIdx
}

// Add appends a user record to the current aggregate. explicitHashKey is
// "" for none. Add keeps a reference to data until Drain or Reset.
//
// Errors: ErrInvalidPartitionKey or ErrInvalidHashKey for a bad key;
// ErrFull when the record does not fit next to those already added (nothing
// is added: Drain, then Add again); ErrTooLarge when it would not fit even
// alone. Errors are wrapped with detail; test them with errors.Is.
func (a *Aggregator) Add(partitionKey, explicitHashKey string, data []byte) error {
	if err := ValidatePartitionKey(partitionKey); err != nil {
		return err
	}
	if explicitHashKey != "" {
		if _, err := ParseHashKey(explicitHashKey); err != nil {
			return err
		}
	}
	grow, pkIdx, ehkIdx := a.delta(partitionKey, explicitHashKey, len(data))
	size := a.Size() + grow
	if len(a.recs) == 0 {
		size = len(partitionKey) + Overhead + grow
	}
	if size > a.cfg.MaxBytes || (a.cfg.MaxRecords > 0 && len(a.recs) >= a.cfg.MaxRecords) {
		if len(a.recs) == 0 {
			return fmt.Errorf("%w: %d bytes aggregated, limit %d", ErrTooLarge, size, a.cfg.MaxBytes)
		}
		return ErrFull
	}
	if pkIdx == uint64(len(a.pks)) {
		a.pks = append(a.pks, partitionKey)
		a.pkIndex[partitionKey] = pkIdx
	}
	if ehkIdx == uint64(len(a.ehks))+1 {
		a.ehks = append(a.ehks, explicitHashKey)
		a.ehkIndex[explicitHashKey] = ehkIdx - 1
	}
	a.recs = append(a.recs, subRecord{pk: pkIdx, ehk: ehkIdx, data: data})
	a.msgSize += grow
	return nil
}

// Drain encodes the current aggregate, empties the Aggregator and returns
// the record. ok is false, and the Record zero, when nothing was added.
// The returned Data is newly allocated and owned by the caller.
func (a *Aggregator) Drain() (rec Record, ok bool) {
	if len(a.recs) == 0 {
		return Record{}, false
	}
	out := make([]byte, 0, Overhead+a.msgSize)
	out = append(out, magic[:]...)
	// Fields in field-number order, as the protobuf runtimes behind the
	// Java KPL serialize them: key tables first, then records.
	for _, k := range a.pks {
		out = appendStringField(out, tagPartitionKeyTable, k)
	}
	for _, k := range a.ehks {
		out = appendStringField(out, tagExplicitHashKeyTbl, k)
	}
	for _, r := range a.recs {
		inner := 1 + sizeVarint(r.pk) + sizeBytesField(len(r.data))
		if r.ehk != 0 {
			inner += 1 + sizeVarint(r.ehk-1)
		}
		out = append(out, tagRecords)
		out = appendVarint(out, uint64(inner))
		out = append(out, tagPartitionKeyIndex)
		out = appendVarint(out, r.pk)
		if r.ehk != 0 {
			out = append(out, tagExplicitHashKeyIdx)
			out = appendVarint(out, r.ehk-1)
		}
		out = appendBytesField(out, tagData, r.data)
	}
	sum := md5.Sum(out[MagicLen:])
	out = append(out, sum[:]...)

	first := a.recs[0]
	rec = Record{PartitionKey: a.pks[first.pk], Data: out, Count: len(a.recs)}
	if first.ehk != 0 {
		rec.ExplicitHashKey = a.ehks[first.ehk-1]
	}
	a.Reset()
	return rec, true
}

// Reset discards the current aggregate and the references it holds.
func (a *Aggregator) Reset() {
	clear(a.pks)
	a.pks = a.pks[:0]
	clear(a.pkIndex)
	clear(a.ehks)
	a.ehks = a.ehks[:0]
	clear(a.ehkIndex)
	clear(a.recs)
	a.recs = a.recs[:0]
	a.msgSize = 0
}

// ValidatePartitionKey checks the Kinesis rule for partition keys: 1 to 256
// Unicode characters. The error wraps ErrInvalidPartitionKey.
func ValidatePartitionKey(pk string) error {
	if pk == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPartitionKey)
	}
	// Each character takes at least one byte, so only long keys need
	// counting.
	if len(pk) > MaxPartitionKeyChars {
		if n := utf8.RuneCountInString(pk); n > MaxPartitionKeyChars {
			return fmt.Errorf("%w: %d characters, limit %d", ErrInvalidPartitionKey, n, MaxPartitionKeyChars)
		}
	}
	return nil
}
