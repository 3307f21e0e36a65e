package kpl

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withDigest wraps a protobuf body as an aggregated record with a correct
// MD5, so tests can hand-build bodies.
func withDigest(body []byte) []byte {
	sum := md5.Sum(body)
	out := append([]byte{0xF3, 0x89, 0x9A, 0xC2}, body...)
	return append(out, sum[:]...)
}

type userIn struct {
	pk, ehk string
	data    []byte
}

func seq200() []byte {
	b := make([]byte, 200)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Golden vectors pin byte compatibility with the KPL. "single" is derived
// by hand from the .proto definition (annotated below). "multi" and
// "tagged" were produced by the reference protobuf runtime from the
// AggregatedRecord .proto of the KPL aggregation format (fields serialized
// in field-number order, as the Java KPL does), then the magic and MD5
// added.
var goldens = []struct {
	name      string
	hex       string
	in        []userIn // what an Aggregator is given to produce it; nil if it cannot (tags)
	want      []UserRecord
	wantPK    string
	wantEHK   string
	encodable bool
}{
	{
		name: "single",
		hex: "f3899ac2" + // magic
			"0a0161" + // partition_key_table[0] = "a"   (field 1, LEN, 1 byte)
			"1a06" + // records[0], 6 bytes            (field 3, LEN)
			"0800" + //   partition_key_index = 0      (field 1, VARINT)
			"1a026869" + // data = "hi"                (field 3, LEN, 2 bytes)
			"ed4ff28777966ae6df59911cb0530cc2", // MD5 of the 11 protobuf bytes
		in:        []userIn{{pk: "a", data: []byte("hi")}},
		want:      []UserRecord{{PartitionKey: "a", Data: []byte("hi"), Aggregated: true}},
		wantPK:    "a",
		encodable: true,
	},
	{
		name: "multi",
		hex: "f3899ac20a06757365722d310a06757365722d3212273137303134313138333436303436393233313733313638373330333731353838343130353732381a0908001a0566697273741acf01080110001ac801" +
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7" +
			"1a0408001a0075ee3514d7297dc034d011047c700688",
		in: []userIn{
			{pk: "user-1", data: []byte("first")},
			{pk: "user-2", ehk: "170141183460469231731687303715884105728", data: seq200()},
			{pk: "user-1", data: []byte{}},
		},
		want: []UserRecord{
			{PartitionKey: "user-1", Data: []byte("first"), Aggregated: true},
			{PartitionKey: "user-2", ExplicitHashKey: "170141183460469231731687303715884105728", Data: seq200(), SubSequence: 1, Aggregated: true},
			{PartitionKey: "user-1", Data: []byte{}, SubSequence: 2, Aggregated: true},
		},
		wantPK:    "user-1",
		encodable: true,
	},
	{
		name: "tagged",
		hex:  "f3899ac20a016b1a1208001a0178220b0a03656e76120470726f641250b206eafb5e789e0b41301e5bafce",
		want: []UserRecord{{PartitionKey: "k", Data: []byte("x"), Aggregated: true}},
	},
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			raw := mustHex(t, g.hex)
			got, err := Deaggregate(raw)
			if err != nil {
				t.Fatalf("Deaggregate: %v", err)
			}
			assertRecords(t, got, g.want)
			if !g.encodable {
				return
			}
			a, err := NewAggregator(Config{})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range g.in {
				if err := a.Add(u.pk, u.ehk, u.data); err != nil {
					t.Fatalf("Add: %v", err)
				}
			}
			size := a.Size()
			rec, ok := a.Drain()
			if !ok {
				t.Fatal("Drain: empty")
			}
			if !bytes.Equal(rec.Data, raw) {
				t.Fatalf("encoding differs from golden\n got %x\nwant %x", rec.Data, raw)
			}
			if rec.PartitionKey != g.wantPK || rec.ExplicitHashKey != g.wantEHK || rec.Count != len(g.in) {
				t.Fatalf("record = %q/%q/%d, want %q/%q/%d", rec.PartitionKey, rec.ExplicitHashKey, rec.Count, g.wantPK, g.wantEHK, len(g.in))
			}
			if size != rec.Size() {
				t.Fatalf("Size() before Drain = %d, record size %d", size, rec.Size())
			}
		})
	}
}

func assertRecords(t *testing.T, got, want []UserRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) ||
			g.SubSequence != w.SubSequence || g.Aggregated != w.Aggregated {
			t.Fatalf("record %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRoundTripAndExactSize(t *testing.T) {
	long := strings.Repeat("é", 256) // 256 characters, 512 bytes
	tests := []struct {
		name string
		in   []userIn
	}{
		{"one empty record", []userIn{{pk: "p", data: nil}}},
		{"same key", []userIn{{pk: "k", data: []byte("1")}, {pk: "k", data: []byte("22")}, {pk: "k", data: []byte("333")}}},
		{"many keys", func() []userIn {
			var in []userIn
			for i := range 300 { // indexes past 127 take two varint bytes
				in = append(in, userIn{pk: fmt.Sprintf("key-%d", i), data: bytes.Repeat([]byte{byte(i)}, i)})
			}
			return in
		}()},
		{"explicit hash keys", []userIn{
			{pk: "a", ehk: "0", data: []byte("x")},
			{pk: "b", ehk: "340282366920938463463374607431768211455", data: []byte("y")},
			{pk: "c", ehk: "0", data: []byte("z")},
			{pk: "d", data: []byte("no ehk")},
		}},
		{"long unicode key and big data", []userIn{{pk: long, data: bytes.Repeat([]byte("d"), 70000)}, {pk: "x", data: []byte("y")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAggregator(Config{})
			if err != nil {
				t.Fatal(err)
			}
			for i, u := range tt.in {
				predicted := a.SizeWith(u.pk, u.ehk, len(u.data))
				if err := a.Add(u.pk, u.ehk, u.data); err != nil {
					t.Fatalf("Add %d: %v", i, err)
				}
				if a.Size() != predicted {
					t.Fatalf("Add %d: Size() = %d, SizeWith predicted %d", i, a.Size(), predicted)
				}
			}
			size := a.Size()
			rec, ok := a.Drain()
			if !ok || rec.Size() != size || rec.Count != len(tt.in) {
				t.Fatalf("Drain: ok=%v size=%d (Size said %d) count=%d", ok, rec.Size(), size, rec.Count)
			}
			if a.Count() != 0 || a.Size() != 0 {
				t.Fatalf("after Drain: Count=%d Size=%d", a.Count(), a.Size())
			}
			got, err := Deaggregate(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]UserRecord, len(tt.in))
			for i, u := range tt.in {
				want[i] = UserRecord{PartitionKey: u.pk, ExplicitHashKey: u.ehk, Data: u.data, SubSequence: i, Aggregated: true}
			}
			assertRecords(t, got, want)
		})
	}
}

func TestAggregatorLimits(t *testing.T) {
	t.Run("fills MaxBytes exactly", func(t *testing.T) {
		a, _ := NewAggregator(Config{})
		n := 0
		for {
			err := a.Add("pk", "", make([]byte, 400))
			if errors.Is(err, ErrFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		size := a.Size()
		if size > MaxRecordBytes || a.SizeWith("pk", "", 400) <= MaxRecordBytes {
			t.Fatalf("ErrFull at %d bytes after %d records; limit %d", size, n, MaxRecordBytes)
		}
		// Top up with the largest record that still fits.
		dataLen := MaxRecordBytes - size
		for a.SizeWith("pk", "", dataLen) > MaxRecordBytes {
			dataLen--
		}
		for a.SizeWith("pk", "", dataLen+1) <= MaxRecordBytes {
			dataLen++
		}
		if err := a.Add("pk", "", make([]byte, dataLen)); err != nil {
			t.Fatalf("top-up Add(%d): %v", dataLen, err)
		}
		rec, _ := a.Drain()
		if rec.Size() > MaxRecordBytes {
			t.Fatalf("record %d bytes > limit", rec.Size())
		}
		if MaxRecordBytes-rec.Size() > 2 {
			t.Fatalf("record %d bytes leaves %d unused", rec.Size(), MaxRecordBytes-rec.Size())
		}
	})
	tests := []struct {
		name    string
		cfg     Config
		prefill int
		pk, ehk string
		dataLen int
		wantErr error
	}{
		{"too large alone", Config{}, 0, "k", "", MaxRecordBytes, ErrTooLarge},
		{"full by count", Config{MaxRecords: 2}, 2, "k", "", 1, ErrFull},
		{"fits by count", Config{MaxRecords: 3}, 2, "k", "", 1, nil},
		{"full by bytes", Config{MaxBytes: 100}, 1, "k", "", 60, ErrFull},
		{"empty key", Config{}, 0, "", "", 1, ErrInvalidPartitionKey},
		{"257 characters", Config{}, 0, strings.Repeat("é", 257), "", 1, ErrInvalidPartitionKey},
		{"hash key not decimal", Config{}, 0, "k", "12a", 1, ErrInvalidHashKey},
		{"hash key 2^128", Config{}, 0, "k", "340282366920938463463374607431768211456", 1, ErrInvalidHashKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAggregator(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.prefill {
				if err := a.Add("k", "", make([]byte, 10)); err != nil {
					t.Fatal(err)
				}
			}
			before := a.Size()
			err = a.Add(tt.pk, tt.ehk, make([]byte, tt.dataLen))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Add = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (a.Size() != before || a.Count() != tt.prefill) {
				t.Fatal("failed Add changed the aggregate")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{MaxBytes: 64, MaxRecords: 1}, true},
		{Config{MaxBytes: 10 << 20}, true},
		{Config{MaxBytes: 63}, false},
		{Config{MaxBytes: 10<<20 + 1}, false},
		{Config{MaxRecords: -1}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.cfg), func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestDeaggregateDecisions(t *testing.T) {
	good := mustHex(t, goldens[0].hex)
	badDigest := bytes.Clone(good)
	badDigest[len(badDigest)-1] ^= 1
	tests := []struct {
		name      string
		data      []byte
		wantPlain bool
		wantErr   error
		wantN     int
		wantMsg   string
	}{
		{"plain json", []byte(`{"event":"view"}`), true, nil, 1, ""},
		{"empty", []byte{}, true, nil, 1, ""},
		{"magic only", []byte{0xF3, 0x89, 0x9A, 0xC2}, true, nil, 1, ""},
		{"magic and short tail", append([]byte{0xF3, 0x89, 0x9A, 0xC2}, make([]byte, 15)...), true, nil, 1, ""},
		{"digest mismatch is plain", badDigest, true, nil, 1, ""},
		{"empty aggregate", withDigest(nil), false, nil, 0, ""},
		{"unknown fields skipped", withDigest(append(mustHex(t, "0a0161"+"2001"+"2d01020304"+"290102030405060708"+"320100"), mustHex(t, "1a0608001a026869")...)), false, nil, 1, ""},
		{"tables after records", withDigest(mustHex(t, "1a0608001a026869"+"0a0161")), false, nil, 1, ""},
		{"truncated varint", withDigest(mustHex(t, "0a0161"+"1a")), false, ErrMalformed, 0, ""},
		{"hostile length", withDigest(mustHex(t, "0a0161"+"1a"+"ffffffffffffffff3f")), false, ErrMalformed, 0, "runs past"},
		{"varint overflow", withDigest(mustHex(t, "08ffffffffffffffffff02")), false, ErrMalformed, 0, ""},
		{"index out of range", withDigest(mustHex(t, "0a0161"+"1a0608011a026869")), false, ErrMalformed, 0, "partition_key_index 1 of 1"},
		{"hash key index out of range", withDigest(mustHex(t, "0a0161"+"1a0808001000"+"1a026869")), false, ErrMalformed, 0, ""},
		{"missing data", withDigest(mustHex(t, "0a0161"+"1a020800")), false, ErrMalformed, 0, ""},
		{"missing partition key index", withDigest(mustHex(t, "0a0161"+"1a041a026869")), false, ErrMalformed, 0, ""},
		{"records as varint", withDigest(mustHex(t, "0a0161"+"1801")), false, ErrMalformed, 0, ""},
		{"group wire type", withDigest(mustHex(t, "0a0161"+"0b")), false, ErrMalformed, 0, ""},
		{"field zero", withDigest(mustHex(t, "0001")), false, ErrMalformed, 0, ""},
		{"tag without key", withDigest(mustHex(t, "0a0161"+"1a0a08001a02686922021200")), false, ErrMalformed, 0, "tag without key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Deaggregate(tt.data)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if got != nil {
					t.Fatal("records returned with an error")
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %q, want it to mention %q", err, tt.wantMsg)
				}
				return
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d records, want %d", len(got), tt.wantN)
			}
			if tt.wantPlain {
				if got[0].Aggregated || !bytes.Equal(got[0].Data, tt.data) || got[0].PartitionKey != "" {
					t.Fatalf("want the input back as a plain record, got %+v", got[0])
				}
			}
		})
	}
}

func TestDeaggregateClipsCapacity(t *testing.T) {
	raw := mustHex(t, goldens[1].hex)
	orig := bytes.Clone(raw)
	recs, err := Deaggregate(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		_ = append(r.Data, 0xEE, 0xEE, 0xEE)
	}
	if !bytes.Equal(raw, orig) {
		t.Fatal("appending to a sub-record's Data overwrote the input")
	}
}

func TestHashKey(t *testing.T) {
	tests := []struct {
		in      string
		want    HashKey
		wantErr bool
	}{
		{"0", HashKey{}, false},
		{"18446744073709551615", HashKey{Lo: ^uint64(0)}, false},
		{"18446744073709551616", HashKey{Hi: 1}, false},
		{"170141183460469231731687303715884105728", HashKey{Hi: 1 << 63}, false},
		{"340282366920938463463374607431768211455", MaxHashKey, false},
		{"340282366920938463463374607431768211456", HashKey{}, true},
		{"999999999999999999999999999999999999999", HashKey{}, true},
		{"", HashKey{}, true},
		{"-1", HashKey{}, true},
		{"1 ", HashKey{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHashKey(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidHashKey) {
					t.Fatalf("err %v does not wrap ErrInvalidHashKey", err)
				}
				return
			}
			if got != tt.want || got.String() != tt.in {
				t.Fatalf("got %+v (%s), want %+v", got, got, tt.want)
			}
		})
	}
	// MD5("user-1") as a big-endian integer, computed independently.
	if got := PartitionKeyHash("user-1").String(); got != "285573413173782752570879317399258818820" {
		t.Fatalf("PartitionKeyHash = %s", got)
	}
	if MaxHashKey.Cmp(HashKey{Hi: 1}) != 1 || (HashKey{Lo: 1}).Cmp(HashKey{Lo: 2}) != -1 || MaxHashKey.Cmp(MaxHashKey) != 0 {
		t.Fatal("Cmp")
	}
}
