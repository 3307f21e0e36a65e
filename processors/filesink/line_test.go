package filesink

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendJSONIsEncodingJSONs: Process's hand-written lines are the
// bytes encoding/json's Encoder wrote before, for every kind of string
// (escapes, HTML characters, control bytes, invalid UTF-8, U+2028) and
// the epoch present or left out.
func TestAppendJSONIsEncodingJSONs(t *testing.T) {
	strs := []string{"", "plain", "a\tb <x> & \"q\" \\ /", "\x00\x01\x1f\x7f\b\f\n\r", "\xff\xfe", "é€𝄞", "\u2028\u2029", "bad \xe2\x82 end",
		"2026-12-04\t12:00:00\tLHR62-C1\t3125\t198.51.100.7\tGET\td111111abcdef8.cloudfront.net\t/a.jpg\t200\t-\tMozilla/5.0%20(X11)"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		strs = append(strs, string(b))
	}
	at := time.Date(2026, 12, 5, 0, 1, 2, 345678900, time.UTC)
	for i, s := range strs {
		l := Line{WorkerID: "w1", ShardID: "shardId-000000000001", Epoch: int64(i % 3), SequenceNumber: "4963" + s, SubSequenceNumber: int64(i),
			PartitionKey: s, Data: s, ProcessedAt: at.Add(time.Duration(i) * time.Millisecond)}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(l); err != nil {
			t.Fatal(err)
		}
		if got := l.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("line %d:\n got %q\nwant %q", i, got, want.Bytes())
		}
		if got := appendLine(nil, &l, []byte(s)); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("line %d from bytes:\n got %q\nwant %q", i, got, want.Bytes())
		}
	}
}

func BenchmarkLine(b *testing.B) {
	l := Line{WorkerID: "w1", ShardID: "shardId-000000000001", Epoch: 3, SequenceNumber: "49630000000000000000000000000000000000000000000000000001",
		PartitionKey: "asset-17", Data: "2026-12-04\t12:00:00\tLHR62-C1\t3125\t198.51.100.7\tGET\td111111abcdef8.cloudfront.net\t/assets/a/b.jpg\t200\t-\tMozilla/5.0",
		ProcessedAt: time.Now().UTC()}
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = l.appendJSON(buf[:0])
		}
	})
	b.Run("json.Encoder", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(l)
		}
	})
}
