package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leasehold/leasehold/event"
)

// full returns an event with every field set.
func full() event.Event {
	return event.Event{
		EventTime:          time.Date(2019, 12, 4, 21, 2, 31, 123000000, time.UTC),
		EventType:          event.TypeView,
		EventID:            "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
		Source:             event.SourceCloudFront,
		AssetID:            "asset-1",
		Tenant:             "acme",
		Asset:              event.Asset{Title: "Spring launch – hero film", Type: event.AssetVideo, Collection: "Campaigns/Spring"},
		UserID:             "u-42",
		ClientIP:           "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6",
		ForwardedFor:       []string{"81.2.69.142", "216.160.83.56"},
		Referrer:           "https://www.example.com/a?b=c&d=<e>",
		ReferringDomain:    "example.com",
		Geo:                event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"},
		UA:                 event.UA{Browser: "Chrome", BrowserVersion: "78.0", OS: "Windows", Device: event.DeviceDesktop},
		Bot:                true,
		UserAgent:          "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
		Bytes:              392,
		Status:             200,
		Method:             "GET",
		URI:                "/videos/launch film.mp4",
		Query:              "download=1&x=%20",
		Host:               "media.example.com",
		CacheResult:        "Hit",
		EdgeLocation:       "LAX1",
		TimeTakenMS:        new(int64(1)),
		TimeToFirstByteMS:  new(int64(0)),
		Protocol:           "https",
		ProtocolVersion:    "HTTP/2.0",
		TLSProtocol:        "TLSv1.3",
		TLSCipher:          "TLS_AES_128_GCM_SHA256",
		ContentType:        "video/mp4",
		ContentLength:      new(int64(1048576)),
		RangeStart:         new(int64(0)),
		RangeEnd:           new(int64(1048575)),
		RequestBytes:       512,
		ClientPort:         50432,
		EdgeResponseResult: "Hit",
		EdgeDetailedResult: "Hit",
		Properties:         json.RawMessage(`{"format":"webm","size":[1,2]}`),
		SourceRecord:       event.SourceRecord{Stream: "events", ShardID: "shardId-000000000000", SequenceNumber: "4959", SubSequenceNumber: 3},
	}
}

// stdJSON encodes e with encoding/json, HTML escaping off, no trailing newline.
func stdJSON(t testing.TB, e *event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	ctl := string([]byte{0, 1, 7, 8, 9, 10, 12, 13, 0x1f, 0x7f})
	tests := []struct {
		name string
		mod  func(e *event.Event)
	}{
		{"full", func(*event.Event) {}},
		{"zero", func(e *event.Event) { *e = event.Event{} }},
		{"minimal", func(e *event.Event) {
			*e = event.Event{EventTime: time.Unix(1, 0).UTC(), EventType: event.TypeRequest, EventID: "x", Source: event.SourceApp}
		}},
		{"control chars", func(e *event.Event) { e.UserAgent = "a" + ctl + "b"; e.URI = "/tab\there" }},
		{"quotes and backslashes", func(e *event.Event) { e.Referrer = `say "hi" \ bye` }},
		{"html chars kept", func(e *event.Event) { e.Query = "a=<b>&c=d" }},
		{"invalid utf8", func(e *event.Event) { e.UserAgent = "ok\xffbad\xc3(\xe2\x82" }},
		{"line separators", func(e *event.Event) { e.URI = "/a\u2028b\u2029c" }},
		{"multibyte", func(e *event.Event) { e.Geo.City = "東京 Zürich 🙂" }},
		{"negative numbers", func(e *event.Event) { e.Bytes = -1; e.Status = -2; e.TimeTakenMS = new(int64(-3)) }},
		{"absent optional numbers omitted", func(e *event.Event) {
			e.TimeTakenMS, e.TimeToFirstByteMS, e.ContentLength, e.RangeStart, e.RangeEnd = nil, nil, nil, nil, nil
			e.RequestBytes, e.ClientPort = 0, 0
		}},
		{"zero optional numbers kept", func(e *event.Event) {
			e.TimeTakenMS, e.ContentLength, e.RangeEnd = new(int64(0)), new(int64(0)), new(int64(0))
		}},
		{"zero geo omitted", func(e *event.Event) { e.Geo = event.Geo{}; e.UA = event.UA{}; e.Asset = event.Asset{} }},
		{"partial asset", func(e *event.Event) { e.Asset = event.Asset{Type: event.AssetImage} }},
		{"partial sub objects", func(e *event.Event) { e.Geo = event.Geo{ASN: 1}; e.UA = event.UA{Device: event.DeviceBot} }},
		{"source record zero subsequence", func(e *event.Event) { e.SourceRecord = event.SourceRecord{ShardID: "s"} }},
		{"non-compact properties", func(e *event.Event) { e.Properties = json.RawMessage("{ \"a\" : [ 1 , 2 ] ,\n\"b\":\"<x>\" }") }},
		{"nanoseconds", func(e *event.Event) { e.EventTime = time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC) }},
		{"empty forwarded list element", func(e *event.Event) { e.ForwardedFor = []string{""} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := full()
			tc.mod(&e)
			got := e.AppendJSON(nil)
			want := stdJSON(t, &e)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendJSON differs from encoding/json\n got: %s\nwant: %s", got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
		})
	}
}

func TestAppendJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		mod  func(e *event.Event)
	}{
		{"full", func(*event.Event) {}},
		{"control chars", func(e *event.Event) { e.UserAgent = "\x00\x01\t\n\r\"\\\x7f" }},
		{"unicode", func(e *event.Event) { e.Referrer = "https://例え.jp/\u2028" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := full()
			tc.mod(&e)
			var back event.Event
			if err := json.Unmarshal(e.AppendJSON(nil), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("round trip changed the event\n got: %+v\nwant: %+v", back, e)
			}
		})
	}
}

func TestAppendJSONInvalidUTF8DecodesToReplacement(t *testing.T) {
	e := full()
	e.UserAgent = "a\xffb"
	var back event.Event
	if err := json.Unmarshal(e.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	if back.UserAgent != "a\uFFFDb" {
		t.Fatalf("user_agent = %q, want a\\uFFFDb", back.UserAgent)
	}
}

func TestAppendJSONInvalidPropertiesOmitted(t *testing.T) {
	e := full()
	e.Properties = json.RawMessage(`{"a":`)
	out := e.AppendJSON([]byte("prefix"))
	if !bytes.HasPrefix(out, []byte("prefix{")) {
		t.Fatalf("dst prefix lost: %s", out)
	}
	if !json.Valid(out[len("prefix"):]) || bytes.Contains(out, []byte("properties")) {
		t.Fatalf("want valid JSON without properties, got %s", out)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(e *event.Event)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(*event.Event) {}, ""},
		{"zero time", func(e *event.Event) { e.EventTime = time.Time{} }, "event_time is zero"},
		{"not utc", func(e *event.Event) { e.EventTime = e.EventTime.In(time.FixedZone("X", 3600)) }, "not UTC"},
		{"year out of range", func(e *event.Event) { e.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside"},
		{"unknown type", func(e *event.Event) { e.EventType = "click" }, `event_type "click"`},
		{"empty id", func(e *event.Event) { e.EventID = "" }, "event_id is empty"},
		{"long id", func(e *event.Event) { e.EventID = strings.Repeat("x", 513) }, "513 bytes"},
		{"unknown source", func(e *event.Event) { e.Source = "s3" }, `source "s3"`},
		{"bad ip", func(e *event.Event) { e.ClientIP = "localhost:8080" }, "client_ip"},
		{"bad properties", func(e *event.Event) { e.Properties = json.RawMessage("{") }, "properties"},
		{"bad utf8", func(e *event.Event) { e.URI = "\xff" }, "uri is not valid UTF-8"},
		{"bad utf8 in list", func(e *event.Event) { e.ForwardedFor = []string{"\xff"} }, "forwarded_for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := full()
			tc.mod(&e)
			err := e.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
			if !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := (&event.Event{}).Validate()
	for _, want := range []string{"event_time", "event_type", "event_id", "source"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}

func TestTypeValid(t *testing.T) {
	for _, tc := range []struct {
		t    event.Type
		want bool
	}{
		{event.TypeView, true}, {event.TypeDownload, true}, {event.TypeShare, true},
		{event.TypeConvert, true}, {event.TypePermissionChange, true}, {event.TypeRequest, true},
		{"", false}, {"View", false},
	} {
		t.Run(string(tc.t), func(t *testing.T) {
			if got := tc.t.Valid(); got != tc.want {
				t.Fatalf("Valid() = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "\x00\t\n\"\\", "\xff\xfe", "\u2028", "é東🙂", "<&>"} {
		f.Add(s, int64(1), uint32(2))
	}
	f.Fuzz(func(t *testing.T, s string, n int64, asn uint32) {
		e := event.Event{
			EventTime: time.Unix(n%253402300799, n%1e9).UTC(),
			EventType: event.Type(s), EventID: s, Source: event.Source(s),
			ForwardedFor: []string{s, s}, Referrer: s, Geo: event.Geo{City: s, ASN: asn},
			UA: event.UA{OS: s}, UserAgent: s, Bytes: n, Status: int(n), URI: s,
			SourceRecord: event.SourceRecord{SequenceNumber: s, SubSequenceNumber: n},
		}
		if y := e.EventTime.Year(); y < 1 || y > 9999 {
			t.Skip()
		}
		got := e.AppendJSON(nil)
		if want := stdJSON(t, &e); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON differs from encoding/json\n got: %s\nwant: %s", got, want)
		}
		var back event.Event
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && back.UserAgent != s {
			t.Fatalf("round trip: %q != %q", back.UserAgent, s)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := full()
	e.Properties = nil
	buf := e.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendJSON(buf[:0])
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	e := full()
	e.Properties = nil
	b.SetBytes(int64(len(e.AppendJSON(nil))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}
