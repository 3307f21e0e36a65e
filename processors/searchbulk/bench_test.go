package searchbulk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// benchMsgs returns n parsed messages one minute apart.
func benchMsgs(n int) []*processors.Message {
	day0 := time.Date(2024, 3, 9, 22, 0, 0, 0, time.UTC)
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: "events", ShardID: "shardId-000000000001", SequenceNumber: fmt.Sprintf("%030d", i)},
			Parsed: true,
			Event: event.Event{EventTime: day0.Add(time.Duration(i) * time.Minute), EventType: event.TypeView, EventID: fmt.Sprintf("ev-%d", i),
				Source: event.SourceCloudFront, AssetID: fmt.Sprintf("asset-%d", i%7), ClientIP: "192.0.2.1", Bytes: int64(i), Status: 200,
				URI: "/assets/a/video.mp4", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
		}
	}
	return out
}

// BenchmarkBulkBody measures encoding 1,000 events into a bulk body (action
// line + document each) the way a shard sink's Write does (the same for both search sinks), into a reused buffer; the
// encoding/json variant is the baseline it replaces.
func BenchmarkBulkBody(b *testing.B) {
	msgs := benchMsgs(1000)
	for _, m := range msgs {
		m.Event.Referrer = "https://www.example.com/campaign?utm_source=newsletter"
		m.Event.ReferringDomain = "example.com"
		m.Event.Geo = event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"}
		m.Event.UA = event.UA{Browser: "Chrome", BrowserVersion: "124.0", OS: "Linux", Device: event.DeviceDesktop}
		m.Event.EdgeLocation, m.Event.CacheResult, m.Event.Protocol, m.Event.Method = "ARN56-P1", "Hit", "https", "GET"
		m.Event.SourceRecord = event.SourceRecord{Stream: "events", ShardID: m.Record.ShardID, SequenceNumber: m.Record.SequenceNumber}
	}
	p, _ := ParseIndexPattern("leasehold-events-{yyyy.MM.dd}")
	e := &Engine{opts: Options{FlushBytes: 5 << 20, MaxBufferBytes: 10 << 20}, pattern: p}

	b.Run("sink", func(b *testing.B) {
		ss := &shardSink{s: e, namer: indexNamer{p: p}}
		for _, m := range msgs {
			ss.appendLocked(ss.encode(m))
		}
		b.SetBytes(int64(len(ss.pend.buf)))
		b.ReportAllocs()
		for b.Loop() {
			ss.pend.buf, ss.pend.items = ss.pend.buf[:0], ss.pend.items[:0]
			for _, m := range msgs {
				ss.appendLocked(ss.encode(m))
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		type meta struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		encode := func() {
			for _, m := range msgs {
				_ = enc.Encode(map[string]meta{"index": {Index: p.Name(m.Event.EventTime), ID: m.Event.EventID}})
				_ = enc.Encode(&m.Event)
			}
		}
		encode()
		b.SetBytes(int64(buf.Len()))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			encode()
		}
	})
}
