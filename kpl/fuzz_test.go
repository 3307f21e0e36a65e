package kpl

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDeaggregate feeds arbitrary bytes (seeded with valid aggregates,
// and with the fuzzer's body wrapped in a correct digest so it reaches the
// protobuf decoder) and checks that Deaggregate never panics, returns
// records xor an error, and that whatever it decodes survives a re-encode.
func FuzzDeaggregate(f *testing.F) {
	for _, g := range goldens {
		f.Add(mustHex(f, g.hex), false)
		raw := mustHex(f, g.hex)
		f.Add(raw[MagicLen:len(raw)-DigestLen], true)
	}
	f.Add([]byte(`{"plain":true}`), false)
	f.Add([]byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f}, true)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			data = withDigest(data)
		}
		recs, err := Deaggregate(data)
		if err != nil {
			if recs != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			return
		}
		if !IsAggregated(data) && (len(recs) != 1 || recs[0].Aggregated) {
			t.Fatalf("plain input gave %+v", recs)
		}
		if len(recs) == 0 || !recs[0].Aggregated {
			return
		}
		if len(recs) > len(data)/minRecordLen {
			t.Fatalf("%d records from %d bytes", len(recs), len(data))
		}
		a, _ := NewAggregator(Config{MaxBytes: maxConfigBytes})
		for _, r := range recs {
			if err := a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data); err != nil {
				return // keys the KPL would not accept; nothing to compare
			}
		}
		rec, _ := a.Drain()
		again, err := Deaggregate(rec.Data)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded aggregate: %d records, %v", len(again), err)
		}
		for i := range recs {
			if again[i].PartitionKey != recs[i].PartitionKey || again[i].ExplicitHashKey != recs[i].ExplicitHashKey ||
				!bytes.Equal(again[i].Data, recs[i].Data) || again[i].SubSequence != i {
				t.Fatalf("record %d changed in a round trip: %+v vs %+v", i, again[i], recs[i])
			}
		}
	})
}
