package cloudfront_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

// TestRealtimeFieldMappings follows AWS's real-time log field reference
// field by field: a record of timestamp and one field must put the value
// where the reference says it belongs.
func TestRealtimeFieldMappings(t *testing.T) {
	tests := []struct {
		field, value string
		check        func(t *testing.T, ev event.Event)
	}{
		{"c-ip", "192.0.2.183", func(t *testing.T, ev event.Event) { want(t, "client_ip", ev.ClientIP, "192.0.2.183") }},
		{"time-to-first-byte", "0.002", func(t *testing.T, ev event.Event) { wantNum(t, "time_to_first_byte_ms", ev.TimeToFirstByteMS, 2) }},
		{"sc-status", "206", func(t *testing.T, ev event.Event) { want(t, "status", ev.Status, 206) }},
		{"sc-bytes", "2390282", func(t *testing.T, ev event.Event) { want(t, "bytes", ev.Bytes, int64(2390282)) }},
		{"cs-method", "HEAD", func(t *testing.T, ev event.Event) { want(t, "method", ev.Method, "HEAD") }},
		{"cs-protocol", "wss", func(t *testing.T, ev event.Event) { want(t, "protocol", ev.Protocol, "wss") }},
		// "The value that the viewer included in the Host header".
		{"cs-host", "Media.Example.COM", func(t *testing.T, ev event.Event) { want(t, "host", ev.Host, "media.example.com") }},
		{"cs-uri-stem", "/images/cat.jpg?mobile=true", func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/images/cat.jpg")
			want(t, "query", ev.Query, "mobile=true")
		}},
		{"cs-bytes", "745", func(t *testing.T, ev event.Event) { want(t, "request_bytes", ev.RequestBytes, int64(745)) }},
		{"x-edge-location", "DFW3", func(t *testing.T, ev event.Event) { want(t, "edge_location", ev.EdgeLocation, "DFW3") }},
		{"x-edge-request-id", "Rx3cLc8QZJyD8lBvPw4PRnMDs37M0MzPPTQH39lDDgxaEH-4iY_VeA==", func(t *testing.T, ev event.Event) {
			want(t, "event_id", ev.EventID, "Rx3cLc8QZJyD8lBvPw4PRnMDs37M0MzPPTQH39lDDgxaEH-4iY_VeA==")
		}},
		// "The domain name of the CloudFront distribution": the host only
		// when the viewer's Host header is not logged.
		{"x-host-header", "d111111abcdef8.cloudfront.net", func(t *testing.T, ev event.Event) {
			want(t, "host", ev.Host, "d111111abcdef8.cloudfront.net")
		}},
		{"time-taken", "0.082", func(t *testing.T, ev event.Event) { wantNum(t, "time_taken_ms", ev.TimeTakenMS, 82) }},
		{"cs-protocol-version", "HTTP/2.0", func(t *testing.T, ev event.Event) { want(t, "protocol_version", ev.ProtocolVersion, "HTTP/2.0") }},
		{"cs-user-agent", "Mozilla/5.0%20(iPhone)", func(t *testing.T, ev event.Event) { want(t, "user_agent", ev.UserAgent, "Mozilla/5.0 (iPhone)") }},
		{"cs-referer", "https://www.example.com/a", func(t *testing.T, ev event.Event) {
			want(t, "referrer", ev.Referrer, "https://www.example.com/a")
			want(t, "referring_domain", ev.ReferringDomain, "example.com")
		}},
		{"cs-cookie", "session=secret", func(t *testing.T, ev event.Event) {
			if strings.Contains(string(ev.AppendJSON(nil)), "secret") {
				t.Fatal("the cookie was copied into the document")
			}
		}},
		{"cs-uri-query", "a=1&b=%2520", func(t *testing.T, ev event.Event) { want(t, "query", ev.Query, "a=1&b=%20") }},
		{"x-edge-response-result-type", "Error", func(t *testing.T, ev event.Event) { want(t, "edge_response_result", ev.EdgeResponseResult, "Error") }},
		{"x-forwarded-for", "192.0.2.183,%20198.51.100.7", func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "192.0.2.183|198.51.100.7")
		}},
		{"ssl-protocol", "TLSv1.3", func(t *testing.T, ev event.Event) { want(t, "tls_protocol", ev.TLSProtocol, "TLSv1.3") }},
		{"ssl-cipher", "TLS_AES_128_GCM_SHA256", func(t *testing.T, ev event.Event) { want(t, "tls_cipher", ev.TLSCipher, "TLS_AES_128_GCM_SHA256") }},
		{"x-edge-result-type", "OriginShieldHit", func(t *testing.T, ev event.Event) { want(t, "cache_result", ev.CacheResult, "OriginShieldHit") }},
		{"sc-content-type", "video/mp4", func(t *testing.T, ev event.Event) { want(t, "content_type", ev.ContentType, "video/mp4") }},
		{"sc-content-len", "1048576", func(t *testing.T, ev event.Event) { wantNum(t, "content_length", ev.ContentLength, 1048576) }},
		{"sc-range-start", "0", func(t *testing.T, ev event.Event) { wantNum(t, "range_start", ev.RangeStart, 0) }},
		{"sc-range-end", "1048575", func(t *testing.T, ev event.Event) { wantNum(t, "range_end", ev.RangeEnd, 1048575) }},
		{"c-port", "50432", func(t *testing.T, ev event.Event) { want(t, "client_port", ev.ClientPort, 50432) }},
		{"x-edge-detailed-result-type", "ClientCommError", func(t *testing.T, ev event.Event) {
			want(t, "edge_detailed_result", ev.EdgeDetailedResult, "ClientCommError")
		}},
		{"c-country", "SE", func(t *testing.T, ev event.Event) { want(t, "country_iso", ev.Geo.CountryISO, "SE") }},
		{"asn", "16509", func(t *testing.T, ev event.Event) { want(t, "asn", ev.Geo.ASN, uint32(16509)) }},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			p, err := cloudfront.NewRealtimeParser([]string{"timestamp", tc.field})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse([]byte("1575493351.123\t" + tc.value + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, &ev)
			want(t, "event_time", ev.EventTime, time.Date(2019, 12, 4, 21, 2, 31, 123e6, time.UTC))
			tc.check(t, ev)
		})
	}
}

// TestRealtimeHostIsTheViewersHost: with both host fields configured, the
// event's host is the Host header the viewer sent (cs-host), never the
// distribution's *.cloudfront.net domain (x-host-header).
func TestRealtimeHostIsTheViewersHost(t *testing.T) {
	for _, order := range [][]string{
		{"timestamp", "cs-host", "x-host-header"},
		{"timestamp", "x-host-header", "cs-host"},
	} {
		p, err := cloudfront.NewRealtimeParser(order)
		if err != nil {
			t.Fatal(err)
		}
		vals := map[string]string{"timestamp": "1575493351", "cs-host": "media.example.com", "x-host-header": "d111111abcdef8.cloudfront.net"}
		ev, err := p.Parse([]byte(join(order, vals)))
		if err != nil {
			t.Fatal(err)
		}
		want(t, "host ("+strings.Join(order, " ")+")", ev.Host, "media.example.com")
	}
}

// TestFieldsHeaderDialects: a #Fields header may name timestamp and the
// real-time spellings; x-host-header then means what it means in real-time
// logs. A standard header keeps the standard meanings.
func TestFieldsHeaderDialects(t *testing.T) {
	tests := []struct {
		name, header, line string
		check              func(t *testing.T, ev event.Event)
	}{
		{"standard names, standard meanings", "date time cs(Host) x-host-header sc-status",
			"2019-12-04\t21:02:31\td111111abcdef8.cloudfront.net\tmedia.example.com\t200", func(t *testing.T, ev event.Event) {
				want(t, "host", ev.Host, "media.example.com")
			}},
		{"timestamp instead of date and time", "timestamp c-ip sc-status",
			"1575493351.123\t192.0.2.1\t200", func(t *testing.T, ev event.Event) {
				want(t, "event_time", ev.EventTime, time.Date(2019, 12, 4, 21, 2, 31, 123e6, time.UTC))
			}},
		{"timestamp(ms) of standard logging v2", "timestamp(ms) DistributionId c-ip c-country",
			"1575493351123\tE1EXAMPLE\t192.0.2.1\tSE", func(t *testing.T, ev event.Event) {
				want(t, "event_time", ev.EventTime, time.Date(2019, 12, 4, 21, 2, 31, 123e6, time.UTC))
				want(t, "country_iso", ev.Geo.CountryISO, "SE")
			}},
		{"real-time spellings, real-time meanings", "timestamp cs-host x-host-header cs-user-agent cs-referer",
			"1575493351\tmedia.example.com\td111111abcdef8.cloudfront.net\tcurl/8.4.0\thttps://example.org/", func(t *testing.T, ev event.Event) {
				want(t, "host", ev.Host, "media.example.com")
				want(t, "user_agent", ev.UserAgent, "curl/8.4.0")
				want(t, "referring_domain", ev.ReferringDomain, "example.org")
			}},
		{"real-time dialect, distribution domain only", "timestamp cs-user-agent x-host-header",
			"1575493351\tcurl/8.4.0\td111111abcdef8.cloudfront.net", func(t *testing.T, ev event.Event) {
				want(t, "host", ev.Host, "d111111abcdef8.cloudfront.net")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd := cloudfront.NewReader(strings.NewReader("#Version: 1.0\n#Fields: " + tc.header + "\n" + tc.line + "\n"))
			ev, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, &ev)
			tc.check(t, ev)
		})
	}
}

// TestZeroTimeTakenIsKept: "0.000" is a measured zero, "-" is no
// measurement; the document must tell them apart.
func TestZeroTimeTakenIsKept(t *testing.T) {
	l := mustLayout(t, header33)
	for _, tc := range []struct{ value, json string }{
		{"0.000", `"time_taken_ms":0`},
		{"0.0004", `"time_taken_ms":0`},
		{"0.0005", `"time_taken_ms":1`},
		{"-", ""},
	} {
		vals := fields33()
		vals["time-taken"] = tc.value
		ev, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
		if err != nil {
			t.Fatal(err)
		}
		doc := string(ev.AppendJSON(nil))
		switch {
		case tc.json == "" && (ev.TimeTakenMS != nil || strings.Contains(doc, "time_taken_ms")):
			t.Fatalf("time-taken %q: %s, want the field absent", tc.value, fmtNum(ev.TimeTakenMS))
		case tc.json != "" && !strings.Contains(doc, tc.json):
			t.Fatalf("time-taken %q: document %s lacks %s", tc.value, doc, tc.json)
		}
	}
}

// TestPartialResponseFields: a 206 keeps its range and the bytes really
// served, so it can be told from a full download.
func TestPartialResponseFields(t *testing.T) {
	l := mustLayout(t, header33)
	vals := fields33()
	for k, v := range map[string]string{
		"cs-uri-stem": "/assets/a1/launch.mp4", "sc-status": "206", "sc-bytes": "1048981", "sc-content-type": "video/mp4",
		"sc-content-len": "1048576", "sc-range-start": "0", "sc-range-end": "1048575",
	} {
		vals[k] = v
	}
	partial, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
	if err != nil {
		t.Fatal(err)
	}
	want(t, "status", partial.Status, 206)
	wantNum(t, "range_start", partial.RangeStart, 0)
	wantNum(t, "range_end", partial.RangeEnd, 1048575)
	wantNum(t, "content_length", partial.ContentLength, 1048576)
	want(t, "event_type (first range)", partial.EventType, event.TypeView)

	vals["sc-status"], vals["sc-range-start"], vals["sc-range-end"] = "200", "-", "-"
	full, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
	if err != nil {
		t.Fatal(err)
	}
	if full.RangeStart != nil || full.RangeEnd != nil {
		t.Fatalf("a full response has no range: %s-%s", fmtNum(full.RangeStart), fmtNum(full.RangeEnd))
	}

	vals["sc-content-len"], vals["sc-range-end"], vals["c-port"], vals["time-to-first-byte"] = "x", "12y", "99999999", "bad"
	lenient, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
	if err != nil {
		t.Fatalf("a bad value in an optional field made the line bad: %v", err)
	}
	if lenient.ContentLength != nil || lenient.RangeEnd != nil || lenient.ClientPort != 0 || lenient.TimeToFirstByteMS != nil {
		t.Fatalf("bad optional values kept: %+v", lenient)
	}
}

// TestNonUTF8EscapesKeepTheirBytes: an escape that is not UTF-8 is read as
// Windows-1252 (Latin-1), so the character survives instead of becoming
// U+FFFD.
func TestNonUTF8EscapesKeepTheirBytes(t *testing.T) {
	l := mustLayout(t, header33)
	tests := []struct {
		field, value, want string
		get                func(ev event.Event) string
	}{
		{"cs-uri-stem", "/caf%E9.jpg", "/café.jpg", func(ev event.Event) string { return ev.URI }},
		{"cs-uri-stem", "/caf%C3%A9/%E9t%E9.jpg", "/café/été.jpg", func(ev event.Event) string { return ev.URI }},
		{"cs-uri-stem", "/%FCber%2520uns.pdf", "/über uns.pdf", func(ev event.Event) string { return ev.URI }},
		{"cs(Referer)", "https://example.de/M%FCnchen", "https://example.de/München", func(ev event.Event) string { return ev.Referrer }},
		{"cs(User-Agent)", "Agent%80%99%81", "Agent€™\u0081", func(ev event.Event) string { return ev.UserAgent }},
		{"cs(User-Agent)", "ok\xe9end", "okéend", func(ev event.Event) string { return ev.UserAgent }},
		{"cs-uri-query", "q=%E9", "q=é", func(ev event.Event) string { return ev.Query }},
		{"cs-uri-query", "q=%25E9", "q=%E9", func(ev event.Event) string { return ev.Query }},
		{"cs-uri-stem", "/ok%EF%BF%BD", "/ok\uFFFD", func(ev event.Event) string { return ev.URI }},
	}
	for _, tc := range tests {
		vals := fields33()
		vals[tc.field] = tc.value
		ev, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, &ev)
		if got := tc.get(ev); got != tc.want {
			t.Errorf("%s %q = %q, want %q", tc.field, tc.value, got, tc.want)
		}
	}
}

// TestRTMPHeaderRejected: an RTMP log's header names playback fields; it
// is rejected with ErrStreamingLog (which is also an ErrBadLayout).
func TestRTMPHeaderRejected(t *testing.T) {
	_, err := cloudfront.NewLayout(strings.Fields("date time x-edge-location c-ip x-event sc-bytes x-cf-status x-cf-client-id cs-uri-stem cs-uri-query c-referrer x-page-url c-user-agent x-sname x-sname-query x-file-ext x-sid"))
	if !errors.Is(err, cloudfront.ErrStreamingLog) || !errors.Is(err, cloudfront.ErrBadLayout) {
		t.Fatalf("err = %v, want ErrStreamingLog (an ErrBadLayout)", err)
	}
}
