package cloudfront_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

// realtimeAll is every field a real-time log configuration could list, in
// the order the CloudFront console offers them.
var realtimeAll = strings.Fields(`timestamp c-ip time-to-first-byte sc-status sc-bytes cs-method
cs-protocol cs-host cs-uri-stem cs-bytes x-edge-location x-edge-request-id x-host-header
time-taken cs-protocol-version c-ip-version cs-user-agent cs-referer cs-cookie cs-uri-query
x-edge-response-result-type x-forwarded-for ssl-protocol ssl-cipher x-edge-result-type
fle-encrypted-fields fle-status sc-content-type sc-content-len sc-range-start sc-range-end
c-port x-edge-detailed-result-type c-country cs-accept-encoding cs-accept
cache-behavior-path-pattern cs-headers cs-header-names cs-headers-count
primary-distribution-id primary-distribution-dns-name origin-fbl origin-lbl asn`)

// realtimeRecord lays out values by realtimeAll ("-" for missing).
func realtimeRecord(vals map[string]string) string {
	return join(realtimeAll, vals) + "\n"
}

func baseRealtime() map[string]string {
	return map[string]string{
		"timestamp":          "1575493351.123",
		"c-ip":               "192.0.2.100",
		"time-to-first-byte": "0.002",
		"sc-status":          "200",
		"sc-bytes":           "2390282",
		"cs-method":          "GET",
		"cs-protocol":        "https",
		"cs-host":            "media.example.com",
		"cs-uri-stem":        "/assets/campaign%2520hero.mp4?download=1&utm_source=mail",
		"x-edge-location":    "IAD53-C1",
		"x-edge-request-id":  "Rx3cLc8QZJyD8lBvPw4PRnMDs37M0MzPPTQH39lDDgxaEH-4iY_VeA==",
		"x-host-header":      "d111111abcdef8.cloudfront.net",
		"time-taken":         "0.005",
		"cs-user-agent":      "Mozilla/5.0%20(iPhone)",
		"cs-referer":         "https://www.Partner.example/landing",
		"x-edge-result-type": "Hit",
		"sc-content-type":    "video/mp4",
		"c-country":          "US",
		"asn":                "16509",
	}
}

func TestNewRealtimeParser(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		err    error
		msg    string
	}{
		{"all known fields", realtimeAll, nil, ""},
		{"minimal", []string{"timestamp"}, nil, ""},
		{"unknown field named", []string{"timestamp", "c-ip", "cs(User-Agent)"}, cloudfront.ErrUnknownField, `"cs(User-Agent)" (at position 3)`},
		{"typo", []string{"timestamp", "sc-stauts"}, cloudfront.ErrUnknownField, `"sc-stauts"`},
		{"standard-only date", []string{"date", "time"}, cloudfront.ErrUnknownField, `"date"`},
		{"duplicate", []string{"timestamp", "c-ip", "c-ip"}, cloudfront.ErrBadLayout, `"c-ip" appears twice`},
		{"duplicate ignored field", []string{"timestamp", "cs-accept", "cs-accept"}, cloudfront.ErrBadLayout, "twice"},
		{"no timestamp", []string{"c-ip", "sc-status"}, cloudfront.ErrBadLayout, "timestamp"},
		{"empty", nil, cloudfront.ErrBadLayout, "no fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cloudfront.NewRealtimeParser(tc.fields)
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				want(t, "fields", strings.Join(p.Fields(), " "), strings.Join(tc.fields, " "))
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.msg)
			}
		})
	}
}

func TestRealtimeParse(t *testing.T) {
	p, err := cloudfront.NewRealtimeParser(realtimeAll)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  map[string]string
		check func(t *testing.T, ev event.Event)
	}{
		{"full record", nil, func(t *testing.T, ev event.Event) {
			want(t, "event_time", ev.EventTime, time.Date(2019, 12, 4, 21, 2, 31, 123e6, time.UTC))
			want(t, "event_id", ev.EventID, "Rx3cLc8QZJyD8lBvPw4PRnMDs37M0MzPPTQH39lDDgxaEH-4iY_VeA==")
			want(t, "uri", ev.URI, "/assets/campaign hero.mp4")
			want(t, "query", ev.Query, "download=1&utm_source=mail")
			want(t, "event_type", ev.EventType, event.TypeDownload)
			want(t, "host", ev.Host, "media.example.com")
			want(t, "user_agent", ev.UserAgent, "Mozilla/5.0 (iPhone)")
			want(t, "referring_domain", ev.ReferringDomain, "partner.example")
			want(t, "country", ev.Geo.CountryISO, "US")
			want(t, "asn", ev.Geo.ASN, uint32(16509))
			want(t, "bytes", ev.Bytes, int64(2390282))
			wantNum(t, "time_taken_ms", ev.TimeTakenMS, 5)
			want(t, "cache_result", ev.CacheResult, "Hit")
			want(t, "edge_location", ev.EdgeLocation, "IAD53-C1")
			want(t, "source", ev.Source, event.SourceCloudFront)
		}},
		{"query field wins over stem", map[string]string{"cs-uri-query": "a=b"}, func(t *testing.T, ev event.Event) {
			want(t, "query", ev.Query, "a=b")
			want(t, "uri", ev.URI, "/assets/campaign hero.mp4")
		}},
		{"stem without query", map[string]string{"cs-uri-stem": "/p/photo.webp"}, func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/p/photo.webp")
			want(t, "query", ev.Query, "")
			want(t, "event_type", ev.EventType, event.TypeView)
		}},
		{"encoded question mark stays in path", map[string]string{"cs-uri-stem": "/what%3F.png"}, func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/what?.png")
			want(t, "query", ev.Query, "")
		}},
		{"whole-second timestamp", map[string]string{"timestamp": "1575493351"}, func(t *testing.T, ev event.Event) {
			want(t, "event_time", ev.EventTime, time.Unix(1575493351, 0).UTC())
		}},
		{"no request id derives one", map[string]string{"x-edge-request-id": "-"}, func(t *testing.T, ev event.Event) {
			if !strings.HasPrefix(ev.EventID, "cf-") {
				t.Fatalf("event_id = %q", ev.EventID)
			}
		}},
		{"asn with prefix", map[string]string{"asn": "AS64496"}, func(t *testing.T, ev event.Event) {
			want(t, "asn", ev.Geo.ASN, uint32(64496))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals := baseRealtime()
			for k, v := range tc.edit {
				vals[k] = v
			}
			ev, err := p.Parse([]byte(realtimeRecord(vals)))
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, &ev)
			tc.check(t, ev)
		})
	}
}

func TestRealtimeParseErrors(t *testing.T) {
	p, err := cloudfront.NewRealtimeParser(realtimeAll)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		err  error
	}{
		{"missing field", strings.TrimSuffix(realtimeRecord(baseRealtime()), "\t16509\n"), cloudfront.ErrFieldCount},
		{"empty timestamp", realtimeRecord(map[string]string{"timestamp": "-"}), cloudfront.ErrBadTime},
		{"bad timestamp", realtimeRecord(map[string]string{"timestamp": "2019-12-04T21:02:31Z"}), cloudfront.ErrBadTime},
		{"timestamp too far", realtimeRecord(map[string]string{"timestamp": "999999999999"}), cloudfront.ErrBadTime},
		{"bad status", realtimeRecord(map[string]string{"timestamp": "1", "sc-status": "OK"}), cloudfront.ErrBadNumber},
		{"empty record", "", cloudfront.ErrFieldCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Parse([]byte(tc.data))
			var le *cloudfront.LineError
			if !errors.As(err, &le) || !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want a LineError wrapping %v", err, tc.err)
			}
		})
	}
}
