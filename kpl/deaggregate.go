package kpl

import (
	"crypto/md5"
	"fmt"
)

// UserRecord is one record recovered from a Kinesis record's data.
type UserRecord struct {
	// PartitionKey is the sub-record's partition key. It is "" for a
	// record that was not aggregated: use the Kinesis record's key.
	PartitionKey string
	// ExplicitHashKey is the sub-record's explicit hash key, or "".
	ExplicitHashKey string
	// Data aliases the input slice (its capacity is clipped, so appending
	// to it never overwrites the input).
	Data []byte
	// SubSequence is the index of the sub-record inside its aggregate,
	// the KCL's sub-sequence number; 0 for a record that was not
	// aggregated. Together with the Kinesis sequence number it identifies
	// a user record exactly, which is what a checkpoint inside an
	// aggregate needs.
	SubSequence int
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
}

// minRecordLen is the smallest encoding of a valid Record inside an
// AggregatedRecord: tag, length, partition_key_index (2 bytes), data
// (2 bytes for an empty one).
const minRecordLen = 6

// Deaggregate splits the data of one Kinesis record into its user records.
// It never blocks and is safe for concurrent use; it allocates at most a
// small multiple of len(data), whatever the input claims.
//
// Decisions, matching the Java KCL where it has one:
//   - Data without the magic prefix, or too short to hold a digest, is
//     one user record with Aggregated false.
//   - Magic present but the MD5 does not match: one plain user record, as
//     the KCL does. A payload that merely starts with the magic bytes is
//     not lost.
//   - Magic and MD5 match but the protobuf message is malformed (truncated
//     or wrongly typed fields, missing required fields, table indexes out
//     of range): an error wrapping ErrMalformed and no records. With a
//     matching digest this is a broken producer, not a plain payload;
//     callers should dead-letter the raw record.
//   - A well-formed aggregate with no sub-records yields an empty slice.
//
// Unknown fields are skipped, as proto2 parsers do. Records are not
// filtered by shard hash range (the Java KCL drops out-of-range aggregates;
// this package loses nothing).
func Deaggregate(data []byte) ([]UserRecord, error) {
	if !IsAggregated(data) {
		return []UserRecord{{Data: data[:len(data):len(data)]}}, nil
	}
	body := data[MagicLen : len(data)-DigestLen]
	if md5.Sum(body) != [DigestLen]byte(data[len(data)-DigestLen:]) {
		return []UserRecord{{Data: data[:len(data):len(data)]}}, nil
	}
	recs, err := decodeAggregate(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return recs, nil
}

// decodeAggregate decodes an AggregatedRecord message. Pass one collects
// the key tables (which protobuf allows anywhere in the message) and counts
// records; pass two decodes records against the complete tables.
func decodeAggregate(body []byte) ([]UserRecord, error) {
	var pks, ehks []string
	nRecs := 0
	for b := body; len(b) > 0; {
		f, n, err := nextField(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		switch f.num {
		case 1, 2, 3:
			if f.typ != wireBytes {
				return nil, fmt.Errorf("AggregatedRecord field %d: %w", f.num, errBadWireType)
			}
		}
		switch f.num {
		case 1:
			pks = append(pks, string(f.payload))
		case 2:
			ehks = append(ehks, string(f.payload))
		case 3:
			nRecs++
		}
	}
	// Every valid record takes at least minRecordLen bytes; do not let a
	// run of empty (invalid) records size the allocation.
	recs := make([]UserRecord, 0, min(nRecs, len(body)/minRecordLen))
	for b := body; len(b) > 0; {
		f, n, _ := nextField(b) // pass one validated the framing
		b = b[n:]
		if f.num != 3 {
			continue
		}
		r, err := decodeRecord(f.payload, pks, ehks)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(recs), err)
		}
		r.SubSequence = len(recs)
		recs = append(recs, r)
	}
	return recs, nil
}

// decodeRecord decodes one Record message and resolves its table indexes.
func decodeRecord(b []byte, pks, ehks []string) (UserRecord, error) {
	var (
		r              = UserRecord{Aggregated: true}
		pkIdx, ehkIdx  uint64
		hasPK, hasData bool
		hasEHK         bool
	)
	for len(b) > 0 {
		f, n, err := nextField(b)
		if err != nil {
			return UserRecord{}, err
		}
		b = b[n:]
		switch f.num {
		case 1:
			if f.typ != wireVarint {
				return UserRecord{}, fmt.Errorf("partition_key_index: %w", errBadWireType)
			}
			pkIdx, hasPK = f.varint, true
		case 2:
			if f.typ != wireVarint {
				return UserRecord{}, fmt.Errorf("explicit_hash_key_index: %w", errBadWireType)
			}
			ehkIdx, hasEHK = f.varint, true
		case 3:
			if f.typ != wireBytes {
				return UserRecord{}, fmt.Errorf("data: %w", errBadWireType)
			}
			r.Data, hasData = f.payload[:len(f.payload):len(f.payload)], true
		case 4:
			if f.typ != wireBytes {
				return UserRecord{}, fmt.Errorf("tags: %w", errBadWireType)
			}
			if err := checkTag(f.payload); err != nil {
				return UserRecord{}, fmt.Errorf("tags: %w", err)
			}
		}
	}
	if !hasPK {
		return UserRecord{}, errMissingPartitionKey
	}
	if !hasData {
		return UserRecord{}, errMissingData
	}
	if pkIdx >= uint64(len(pks)) {
		return UserRecord{}, fmt.Errorf("partition_key_index %d of %d: %w", pkIdx, len(pks), errIndexOutOfRange)
	}
	r.PartitionKey = pks[pkIdx]
	if hasEHK {
		if ehkIdx >= uint64(len(ehks)) {
			return UserRecord{}, fmt.Errorf("explicit_hash_key_index %d of %d: %w", ehkIdx, len(ehks), errIndexOutOfRange)
		}
		r.ExplicitHashKey = ehks[ehkIdx]
	}
	return r, nil
}

// checkTag validates a Tag message (required string key = 1; optional
// string value = 2). Tags are not returned: neither the KPL nor this
// project writes them, but a strict proto2 parser rejects a bad one, so
// this one does too.
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		f, n, err := nextField(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if (f.num == 1 || f.num == 2) && f.typ != wireBytes {
			return errBadWireType
		}
		if f.num == 1 {
			hasKey = true
		}
	}
	if !hasKey {
		return wireError("tag without key")
	}
	return nil
}
