package opensearch

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
)

// TestMappingsCoverEveryEventField fails when event.Event gains a field
// that the template does not map.
func TestMappingsCoverEveryEventField(t *testing.T) {
	full := event.Event{
		EventTime: time.Now().UTC(), EventType: event.TypeView, EventID: "x", Source: event.SourceApp, AssetID: "a", Tenant: "t",
		Asset:  event.Asset{Title: "t", Type: event.AssetVideo, Collection: "c"},
		UserID: "u", ClientIP: "::1", ForwardedFor: []string{"x"}, Referrer: "r", ReferringDomain: "d",
		Geo: event.Geo{CountryISO: "SE", Country: "c", City: "c", ASN: 1, ASOrg: "o"},
		UA:  event.UA{Browser: "b", BrowserVersion: "1", OS: "o", Device: "d"}, Bot: true, UserAgent: "ua", Bytes: 1, Status: 200,
		Method: "GET", URI: "/", Query: "q", Host: "h", CacheResult: "Hit", EdgeLocation: "L", TimeTakenMS: new(int64(1)), Protocol: "https",
		ContentType: "c", Properties: json.RawMessage(`{"k":1}`),
		TimeToFirstByteMS: new(int64(1)), ProtocolVersion: "HTTP/2.0", TLSProtocol: "TLSv1.3", TLSCipher: "c",
		ContentLength: new(int64(1)), RangeStart: new(int64(0)), RangeEnd: new(int64(0)), RequestBytes: 1, ClientPort: 1,
		EdgeResponseResult: "Hit", EdgeDetailedResult: "Hit",
		SourceRecord: event.SourceRecord{Stream: "s", ShardID: "s", SequenceNumber: "1", SubSequenceNumber: 1},
	}
	var doc map[string]any
	if err := json.Unmarshal(full.AppendJSON(nil), &doc); err != nil {
		t.Fatal(err)
	}
	if n := reflect.TypeOf(full).NumField(); len(doc) != n {
		t.Fatalf("the test event sets %d of %d fields; set them all", len(doc), n)
	}
	var missing []string
	var walk func(prefix string, doc map[string]any, props map[string]any)
	walk = func(prefix string, doc map[string]any, props map[string]any) {
		for k, v := range doc {
			m, ok := props[k].(map[string]any)
			if !ok {
				missing = append(missing, prefix+k)
				continue
			}
			if sub, isObj := v.(map[string]any); isObj && m["type"] == "object" {
				walk(prefix+k+".", sub, m["properties"].(map[string]any))
			}
		}
	}
	walk("", doc, Mappings()["properties"].(map[string]any))
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("fields without a mapping: %v", missing)
	}
	if typ := Mappings()["properties"].(map[string]any)["client_ip"].(map[string]any)["type"]; typ != "ip" {
		t.Fatalf("client_ip is %v", typ)
	}
}
