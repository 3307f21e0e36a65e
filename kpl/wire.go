package kpl

// Protobuf wire types used by the format.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Field tags, pre-shifted: (field number << 3) | wire type.
const (
	tagPartitionKeyTable  = 1<<3 | wireBytes  // AggregatedRecord.partition_key_table
	tagExplicitHashKeyTbl = 2<<3 | wireBytes  // AggregatedRecord.explicit_hash_key_table
	tagRecords            = 3<<3 | wireBytes  // AggregatedRecord.records
	tagPartitionKeyIndex  = 1<<3 | wireVarint // Record.partition_key_index
	tagExplicitHashKeyIdx = 2<<3 | wireVarint // Record.explicit_hash_key_index
	tagData               = 3<<3 | wireBytes  // Record.data
	maxVarintLen          = 10
)

// Decoding failures; Deaggregate wraps them in ErrMalformed.
const (
	errTruncatedVarint     = wireError("truncated varint")
	errVarintOverflow      = wireError("varint overflows 64 bits")
	errTruncatedField      = wireError("length-delimited field runs past its message")
	errBadWireType         = wireError("unsupported or unexpected wire type")
	errZeroField           = wireError("field number 0")
	errMissingPartitionKey = wireError("record without partition_key_index")
	errMissingData         = wireError("record without data")
	errIndexOutOfRange     = wireError("table index out of range")
)

// wireError is a decoding failure; Deaggregate wraps it in ErrMalformed.
type wireError string

func (e wireError) Error() string { return string(e) }

// sizeVarint returns the number of bytes the varint encoding of v takes.
func sizeVarint(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendVarint appends the varint encoding of v.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// sizeBytesField is the encoded size of a length-delimited field with a
// one-byte tag and an n-byte payload.
func sizeBytesField(n int) int { return 1 + sizeVarint(uint64(n)) + n }

// appendBytesField appends a length-delimited field with a one-byte tag.
func appendBytesField(b []byte, tag byte, p []byte) []byte {
	b = append(b, tag)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

// appendStringField is appendBytesField for a string, without converting it.
func appendStringField(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// readVarint decodes a varint from b, returning the value and the number of
// bytes read. It never reads past b.
func readVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < maxVarintLen; i++ {
		c := b[i]
		if i == maxVarintLen-1 && c > 1 {
			return 0, 0, errVarintOverflow
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	if len(b) >= maxVarintLen {
		return 0, 0, errVarintOverflow
	}
	return 0, 0, errTruncatedVarint
}

// field is one decoded protobuf field: its number, wire type, the varint
// value (wireVarint) or the payload (wireBytes).
type field struct {
	num     uint64
	typ     int
	varint  uint64
	payload []byte
}

// nextField decodes the field at the start of b and returns it with the
// number of bytes consumed. Length prefixes are checked against len(b), so
// a hostile length can never cause a large allocation or an out-of-range
// slice. Groups (wire types 3 and 4) are rejected: the format never uses
// them.
func nextField(b []byte) (field, int, error) {
	key, n, err := readVarint(b)
	if err != nil {
		return field{}, 0, err
	}
	f := field{num: key >> 3, typ: int(key & 7)}
	if f.num == 0 {
		return field{}, 0, errZeroField
	}
	rest := b[n:]
	switch f.typ {
	case wireVarint:
		v, m, err := readVarint(rest)
		if err != nil {
			return field{}, 0, err
		}
		f.varint = v
		return f, n + m, nil
	case wireBytes:
		l, m, err := readVarint(rest)
		if err != nil {
			return field{}, 0, err
		}
		if l > uint64(len(rest)-m) {
			return field{}, 0, errTruncatedField
		}
		f.payload = rest[m : m+int(l)]
		return f, n + m + int(l), nil
	case wireFixed64:
		if len(rest) < 8 {
			return field{}, 0, errTruncatedField
		}
		return f, n + 8, nil
	case wireFixed32:
		if len(rest) < 4 {
			return field{}, 0, errTruncatedField
		}
		return f, n + 4, nil
	default:
		return field{}, 0, errBadWireType
	}
}
