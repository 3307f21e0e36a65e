package cloudfront_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/cloudfront"
)

// benchLine is a realistic 33-field line: an encoded user agent, a referrer,
// a query string and a media path.
var benchLine = []byte(strings.NewReplacer(
	"\t/index.html\t", "\t/tenants/acme/assets/8f14e45f/launch%2520film.mp4\t",
	"\t200\t-\t", "\t200\thttps://www.example.com/campaign/spring?utm_source=newsletter\t",
	"Hit\tSOX4", "Hit\tSOX4",
).Replace(line33))

func BenchmarkParseLine(b *testing.B) {
	l, err := cloudfront.StandardLayout(33)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchLine) + 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cloudfront.ParseLine(l, benchLine); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseToJSON measures the whole hot path of the worker: a Kinesis
// record holding one line → event → JSON document.
func BenchmarkParseToJSON(b *testing.B) {
	b.SetBytes(int64(len(benchLine) + 1))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		ev, err := cloudfront.ParseRecord(benchLine)
		if err != nil {
			b.Fatal(err)
		}
		buf = ev.AppendJSON(buf[:0])
	}
}

// BenchmarkReader measures a whole file through the streaming Reader.
func BenchmarkReader(b *testing.B) {
	var file bytes.Buffer
	file.WriteString("#Version: 1.0\n#Fields: " + header33 + "\n")
	for range 1000 {
		file.Write(benchLine)
		file.WriteByte('\n')
	}
	data := file.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := cloudfront.NewReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkRealtimeParse(b *testing.B) {
	p, err := cloudfront.NewRealtimeParser(realtimeAll)
	if err != nil {
		b.Fatal(err)
	}
	rec := []byte(realtimeRecord(baseRealtime()))
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(rec); err != nil {
			b.Fatal(err)
		}
	}
}
