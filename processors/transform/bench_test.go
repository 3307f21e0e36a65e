package transform_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
	"github.com/leasehold/leasehold/worker"
)

// benchBatch is the number of records per Process call: a typical
// GetRecords page of CloudFront lines.
const benchBatch = 500

// benchRecords returns benchBatch records cycling through the fixture's
// valid lines, and their total data size.
func benchRecords(b *testing.B) ([]worker.Record, int64) {
	b.Helper()
	var lines [][]byte
	for _, d := range fixtureRecords(b) {
		if d[0] != '#' { // the truncated line travels with its header; it does not parse
			lines = append(lines, d)
		}
	}
	recs := make([]worker.Record, benchBatch)
	var size int64
	for i := range recs {
		recs[i] = record(i, lines[i%len(lines)])
		size += int64(len(recs[i].Data))
	}
	return recs, size
}

// benchChain builds parse → useragent → geoip → anonymize_ip → asset_id.
func benchChain(b testing.TB) []processors.Processor {
	b.Helper()
	parse, err := transform.NewParser(transform.ParserOptions{Format: transform.FormatCloudFront})
	if err != nil {
		b.Fatal(err)
	}
	ua, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dbs := testGeoDBs(b)
	geo := newTestGeoIP(b, transform.GeoIPOptions{CityDB: dbs.City, ASNDB: dbs.ASN})
	anon, err := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	if err != nil {
		b.Fatal(err)
	}
	asset, err := transform.NewAssetID(transform.AssetIDOptions{Pattern: `^/assets/(?P<asset>[A-Za-z0-9-]+)/`})
	if err != nil {
		b.Fatal(err)
	}
	return []processors.Processor{parse, ua, geo, anon, asset}
}

// appendBulk appends an OpenSearch bulk "index" action and the document,
// with the index named by event time and the event id as _id.
func appendBulk(dst []byte, m *processors.Message) []byte {
	dst = append(dst, `{"index":{"_index":"leasehold-events-`...)
	dst = m.Event.EventTime.AppendFormat(dst, "2006.01.02")
	dst = append(dst, `","_id":`...)
	dst = strconv.AppendQuote(dst, m.Event.EventID) // ids are printable ASCII: valid JSON
	dst = append(dst, "}}\n"...)
	dst = m.Event.AppendJSON(dst)
	return append(dst, '\n')
}

// BenchmarkChain runs CloudFront fixture lines, as Kinesis records, through
// parse → useragent → geoip (test databases) → anonymize_ip → asset_id and
// encodes each as an OpenSearch bulk action and document. MB/s is of input
// lines; records/s is per core (one goroutine).
func BenchmarkChain(b *testing.B) {
	recs, size := benchRecords(b)
	chain := benchChain(b)
	ctx := context.Background()
	msgs := make([]*processors.Message, len(recs))
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for i := range recs {
			msgs[i] = &processors.Message{Record: recs[i]}
		}
		batch := msgs
		for _, p := range chain {
			var err error
			if batch, err = p.Process(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		buf = buf[:0]
		for _, m := range batch {
			if m.Failed() != nil {
				b.Fatalf("failed: %v", m.Failed().Err)
			}
			buf = appendBulk(buf, m)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(len(recs)), "records/op")
}

// BenchmarkStage measures each stage alone on already parsed messages
// (parse on raw records), to show where the chain's time goes. Each
// iteration first restores the messages by copying them (a memmove of
// about 300 KB, a few percent of the smallest figure).
func BenchmarkStage(b *testing.B) {
	recs, size := benchRecords(b)
	chain := benchChain(b)
	names := []string{"parse", "useragent", "geoip", "anonymize_ip", "asset_id", "json"}
	ctx := context.Background()
	for si, name := range names {
		b.Run(name, func(b *testing.B) {
			parsed := make([]*processors.Message, len(recs))
			for i := range recs {
				parsed[i] = &processors.Message{Record: recs[i]}
			}
			for _, p := range chain[:min(si, len(chain))] {
				parsed, _ = p.Process(ctx, parsed)
			}
			store := make([]processors.Message, len(recs))
			msgs := make([]*processors.Message, len(recs))
			buf := make([]byte, 0, 1<<20)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				for i, m := range parsed {
					store[i] = *m // ForwardedFor stays shared: anonymizing it twice is idempotent
					msgs[i] = &store[i]
				}
				if si < len(chain) {
					if _, err := chain[si].Process(ctx, msgs); err != nil {
						b.Fatal(err)
					}
					continue
				}
				buf = buf[:0]
				for _, m := range msgs {
					buf = appendBulk(buf, m)
				}
			}
		})
	}
}

// BenchmarkUserAgentUncached parses distinct agents, so every call misses
// the cache: the cost of a new agent.
func BenchmarkUserAgentUncached(b *testing.B) {
	u, err := transform.NewUserAgent(transform.UserAgentOptions{CacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	agents := make([]string, 4096)
	for i := range agents {
		agents[i] = fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.%d.%d Safari/537.36", i, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u.Parse(agents[i%len(agents)])
		i++
	}
}
