package kpl

import (
	"fmt"
	"testing"
)

// benchLine is a typical event: a 400-byte JSON line.
var benchLine = make([]byte, 400)

// BenchmarkAggregate measures packing 400-byte records into 1 MiB
// aggregates (including Drain's encoding and MD5). Bytes are user data.
func BenchmarkAggregate(b *testing.B) {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("asset-%08d", i)
	}
	a, _ := NewAggregator(Config{})
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i++
		if err := a.Add(k, "", benchLine); err == ErrFull {
			a.Drain()
			_ = a.Add(k, "", benchLine)
		}
	}
	a.Drain()
}

// BenchmarkDeaggregate measures decoding a full 1 MiB aggregate of
// 400-byte records, MD5 check included. Bytes are the aggregate's size.
func BenchmarkDeaggregate(b *testing.B) {
	a, _ := NewAggregator(Config{})
	for i := 0; ; i++ {
		if a.Add(fmt.Sprintf("asset-%08d", i%64), "", benchLine) != nil {
			break
		}
	}
	rec, _ := a.Drain()
	b.SetBytes(int64(len(rec.Data)))
	b.ReportAllocs()
	for b.Loop() {
		recs, err := Deaggregate(rec.Data)
		if err != nil || len(recs) != rec.Count {
			b.Fatal(err)
		}
	}
}
