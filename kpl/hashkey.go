package kpl

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// HashKey is a 128-bit Kinesis hash key: the position of a record on the
// stream's hash ring. Shards own contiguous, inclusive ranges of it.
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128-1, the top of the hash ring.
var MaxHashKey = HashKey{Hi: ^uint64(0), Lo: ^uint64(0)}

// PartitionKeyHash returns the hash key Kinesis derives from a partition
// key: the MD5 of its UTF-8 bytes read as a big-endian unsigned integer.
func PartitionKeyHash(partitionKey string) HashKey {
	sum := md5.Sum([]byte(partitionKey))
	return HashKey{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// EffectiveHashKey returns the hash key that routes a record: the explicit
// hash key when one is given, else the partition key's hash. The error
// wraps ErrInvalidHashKey.
func EffectiveHashKey(partitionKey, explicitHashKey string) (HashKey, error) {
	if explicitHashKey != "" {
		return ParseHashKey(explicitHashKey)
	}
	return PartitionKeyHash(partitionKey), nil
}

// ParseHashKey parses a decimal hash key as Kinesis writes them (for
// example "340282366920938463463374607431768211455"). The error wraps
// ErrInvalidHashKey for anything but 1–39 decimal digits with a value below
// 2^128.
func ParseHashKey(s string) (HashKey, error) {
	if len(s) == 0 || len(s) > 39 {
		return HashKey{}, fmt.Errorf("%w: %q", ErrInvalidHashKey, s)
	}
	var h HashKey
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return HashKey{}, fmt.Errorf("%w: %q", ErrInvalidHashKey, s)
		}
		// h = h*10 + digit, detecting overflow past 128 bits.
		hiHi, hiLo := bits.Mul64(h.Hi, 10)
		loHi, loLo := bits.Mul64(h.Lo, 10)
		hi, carry := bits.Add64(hiLo, loHi, 0)
		if hiHi != 0 || carry != 0 {
			return HashKey{}, fmt.Errorf("%w: %q overflows 128 bits", ErrInvalidHashKey, s)
		}
		lo, carry := bits.Add64(loLo, uint64(c-'0'), 0)
		hi, carry = bits.Add64(hi, 0, carry)
		if carry != 0 {
			return HashKey{}, fmt.Errorf("%w: %q overflows 128 bits", ErrInvalidHashKey, s)
		}
		h = HashKey{Hi: hi, Lo: lo}
	}
	return h, nil
}

// String returns the decimal form Kinesis uses in HashKeyRange and
// ExplicitHashKey.
func (h HashKey) String() string {
	if h.Hi == 0 {
		return fmt.Sprint(h.Lo)
	}
	var buf [39]byte
	i := len(buf)
	for h.Hi != 0 || h.Lo != 0 {
		// Divide the 128-bit value by 10, high word first.
		qHi, r := bits.Div64(0, h.Hi, 10)
		qLo, r := bits.Div64(r, h.Lo, 10)
		i--
		buf[i] = byte('0' + r)
		h = HashKey{Hi: qHi, Lo: qLo}
	}
	return string(buf[i:])
}

// Cmp returns -1, 0 or +1 as h is less than, equal to or greater than o.
func (h HashKey) Cmp(o HashKey) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}
