package opensearch

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/leasehold/leasehold/event"
)

// BenchmarkBulkBody measures encoding 1,000 events into a bulk body (action
// line + document each) the way Write does, into a reused buffer; the
// encoding/json variant is the baseline it replaces.
func BenchmarkBulkBody(b *testing.B) {
	msgs := testMsgs(0, 1000)
	for _, m := range msgs {
		m.Event.Referrer = "https://www.example.com/campaign?utm_source=newsletter"
		m.Event.ReferringDomain = "example.com"
		m.Event.Geo = event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"}
		m.Event.UA = event.UA{Browser: "Chrome", BrowserVersion: "124.0", OS: "Linux", Device: event.DeviceDesktop}
		m.Event.EdgeLocation, m.Event.CacheResult, m.Event.Protocol, m.Event.Method = "ARN56-P1", "Hit", "https", "GET"
		m.Event.SourceRecord = event.SourceRecord{Stream: "events", ShardID: m.Record.ShardID, SequenceNumber: m.Record.SequenceNumber}
	}
	cfg := Config{URL: "http://x"}.withDefaults()
	p, _ := parseIndexPattern(cfg.Index)

	b.Run("sink", func(b *testing.B) {
		ss := &shardSink{s: &Sink{cfg: cfg, pattern: p}, namer: indexNamer{p: p}}
		for _, m := range msgs {
			ss.appendLocked(m)
		}
		b.SetBytes(int64(len(ss.pend.buf)))
		b.ReportAllocs()
		for b.Loop() {
			ss.pend.buf, ss.pend.items = ss.pend.buf[:0], ss.pend.items[:0]
			for _, m := range msgs {
				ss.appendLocked(m)
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
				_ = enc.Encode(map[string]meta{"index": {Index: p.name(m.Event.EventTime), ID: m.Event.EventID}})
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
