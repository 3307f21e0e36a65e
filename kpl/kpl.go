// Package kpl reads and writes the Kinesis Producer Library (KPL) aggregated
// record format, byte-compatible with the Java KPL and KCL.
//
// An aggregated record is one Kinesis record whose data is
//
//	magic (0xF3 0x89 0x9A 0xC2) | protobuf AggregatedRecord | MD5(protobuf) (16 bytes)
//
// where the protobuf message (proto2) is
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Tag    { required string key = 1; optional string value = 2; }
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//
// The protobuf encoding is written by hand in wire.go instead of generated
// with google.golang.org/protobuf: the message is tiny and fixed, the decoder
// must bound every length by the input anyway (it parses untrusted stream
// data), hand-encoding lets the Aggregator report the exact encoded size as
// records are added, and it keeps a large dependency out of every binary that
// only wants to aggregate.
//
// Compatibility note for producers: the Java KCL drops every sub-record of
// an aggregate when any one of them has an effective hash key outside the
// hash range of the shard it was read from. An aggregate must therefore only
// hold user records that map to the same shard; package producer groups by
// the stream's shard map for that reason.
package kpl

import "errors"

// magic is the 4-byte prefix that marks a KPL aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	// MagicLen is the length of the magic prefix.
	MagicLen = 4
	// DigestLen is the length of the MD5 trailer.
	DigestLen = 16
	// Overhead is the number of bytes an aggregated record adds around its
	// protobuf message: the magic prefix and the MD5 trailer.
	Overhead = MagicLen + DigestLen

	// MaxRecordBytes is the default Kinesis limit on one record: data plus
	// partition key, 1 MiB.
	MaxRecordBytes = 1 << 20
	// MaxPartitionKeyChars is the Kinesis limit on a partition key, in
	// Unicode characters.
	MaxPartitionKeyChars = 256
)

var (
	// ErrFull is returned by Aggregator.Add when the record does not fit in
	// the current aggregate (by size or count). The record was not added;
	// Drain the aggregator and add it again.
	ErrFull = errors.New("kpl: aggregate full")
	// ErrTooLarge is returned by Aggregator.Add when the record would not fit
	// even in an empty aggregate. Send it unaggregated, if Kinesis accepts
	// it, or reject it.
	ErrTooLarge = errors.New("kpl: record too large to aggregate")
	// ErrInvalidPartitionKey means a partition key is empty or longer than
	// MaxPartitionKeyChars characters.
	ErrInvalidPartitionKey = errors.New("kpl: invalid partition key")
	// ErrInvalidHashKey means an explicit hash key is not a decimal integer
	// in [0, 2^128).
	ErrInvalidHashKey = errors.New("kpl: invalid explicit hash key")
	// ErrMalformed is returned by Deaggregate for a record that carries the
	// magic prefix and a matching MD5 but whose protobuf message cannot be
	// decoded (truncated fields, missing required fields, table indexes out
	// of range). Such a record was written by a broken aggregator; callers
	// should dead-letter the raw record rather than guess.
	ErrMalformed = errors.New("kpl: malformed aggregated record")
)

// IsAggregated reports whether data starts with the KPL magic prefix and is
// long enough to hold a digest. It does not check the digest; Deaggregate
// does.
func IsAggregated(data []byte) bool {
	return len(data) >= Overhead && [4]byte(data[:MagicLen]) == magic
}
