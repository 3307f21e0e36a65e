package cloudfront_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

// header33 is the current standard-log field list.
const header33 = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end"

// line33 is the first line of the fixture (AWS developer guide example).
const line33 = "2019-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-"

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36"

// fields33 returns line33's values, which tests edit by field name.
func fields33() map[string]string {
	names := strings.Fields(header33)
	vals := strings.Split(line33, "\t")
	m := make(map[string]string, len(names))
	for i, n := range names {
		m[n] = vals[i]
	}
	return m
}

// join lays out values by the given header names ("-" for missing).
func join(names []string, vals map[string]string) string {
	out := make([]string, len(names))
	for i, n := range names {
		v, ok := vals[n]
		if !ok {
			v = "-"
		}
		out[i] = v
	}
	return strings.Join(out, "\t")
}

// mustLayout compiles a header or fails the test.
func mustLayout(t testing.TB, header string) *cloudfront.Layout {
	t.Helper()
	l, err := cloudfront.NewLayout(strings.Fields(header))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkEvent asserts properties every parsed event must have.
func checkEvent(t testing.TB, ev *event.Event) {
	t.Helper()
	if err := ev.Validate(); err != nil {
		t.Fatalf("parsed event does not validate: %v\n%+v", err, ev)
	}
	if out := ev.AppendJSON(nil); !json.Valid(out) {
		t.Fatalf("AppendJSON gave invalid JSON: %s", out)
	}
}

func TestParseLine33(t *testing.T) {
	ev, err := cloudfront.ParseLine(mustLayout(t, header33), []byte(line33+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkEvent(t, &ev)
	want := event.Event{
		EventTime:    time.Date(2019, 12, 4, 21, 2, 31, 0, time.UTC),
		EventType:    event.TypeRequest, // an HTML page, not a media asset
		EventID:      "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
		Source:       event.SourceCloudFront,
		ClientIP:     "89.160.20.112",
		UserAgent:    chromeUA,
		Bytes:        392,
		Status:       200,
		Method:       "GET",
		URI:          "/index.html",
		Host:         "d111111abcdef8.cloudfront.net",
		CacheResult:  "Hit",
		EdgeLocation: "LAX1",
		TimeTakenMS:  new(int64(1)),
		Protocol:     "https",
		ContentType:  "text/html",
		// The fields after the first 26.
		ProtocolVersion:    "HTTP/2.0",
		TLSProtocol:        "TLSv1.2",
		TLSCipher:          "ECDHE-RSA-AES128-GCM-SHA256",
		EdgeResponseResult: "Hit",
		EdgeDetailedResult: "Hit",
		TimeToFirstByteMS:  new(int64(1)),
		ContentLength:      new(int64(78)),
		RequestBytes:       23,
		ClientPort:         11040,
	}
	if got, wantJSON := string(ev.AppendJSON(nil)), string(want.AppendJSON(nil)); got != wantJSON {
		t.Fatalf("event\n got: %s\nwant: %s", got, wantJSON)
	}
}

// TestParseLineHistoricalLayouts writes a line for every field count the
// standard format has had and checks what each layout can and cannot carry.
func TestParseLineHistoricalLayouts(t *testing.T) {
	names := strings.Fields(header33)
	vals := fields33()
	vals["x-forwarded-for"] = "81.2.69.142,%20216.160.83.56"
	for _, n := range cloudfront.StandardFieldCounts() {
		t.Run(strconv.Itoa(n)+" fields", func(t *testing.T) {
			line := join(names[:n], vals)
			l, err := cloudfront.StandardLayout(n)
			if err != nil {
				t.Fatal(err)
			}
			viaLayout, err := cloudfront.ParseLine(l, []byte(line))
			if err != nil {
				t.Fatal(err)
			}
			viaRecord, err := cloudfront.ParseRecord([]byte(line + "\n"))
			if err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			viaHeader, err := cloudfront.ParseLine(mustLayout(t, strings.Join(names[:n], " ")), []byte(line))
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range []event.Event{viaRecord, viaHeader} {
				if string(ev.AppendJSON(nil)) != string(viaLayout.AppendJSON(nil)) {
					t.Fatalf("layouts disagree:\n%s\n%s", ev.AppendJSON(nil), viaLayout.AppendJSON(nil))
				}
			}
			ev := viaLayout
			checkEvent(t, &ev)
			if ev.UserAgent != chromeUA || ev.Status != 200 || ev.Bytes != 392 || ev.URI != "/index.html" {
				t.Fatalf("core fields wrong: %+v", ev)
			}
			hasID := n >= 15
			if got := ev.EventID == vals["x-edge-request-id"]; got != hasID {
				t.Fatalf("event_id = %q, from request id: %v, want %v", ev.EventID, got, hasID)
			}
			if !hasID && !strings.HasPrefix(ev.EventID, "cf-") {
				t.Fatalf("event_id = %q, want a derived cf- id", ev.EventID)
			}
			if got, want := ev.TimeTakenMS != nil && *ev.TimeTakenMS == 1, n >= 19; got != want {
				t.Fatalf("time_taken_ms = %v with %d fields", ev.TimeTakenMS, n)
			}
			if got, want := ev.ProtocolVersion == "HTTP/2.0", n >= 24; got != want {
				t.Fatalf("protocol_version = %q with %d fields", ev.ProtocolVersion, n)
			}
			if got, want := ev.ContentLength != nil && *ev.ContentLength == 78 && ev.ClientPort == 11040, n >= 33; got != want {
				t.Fatalf("content_length = %v, client_port = %d with %d fields", ev.ContentLength, ev.ClientPort, n)
			}
			if got, want := len(ev.ForwardedFor) == 2, n >= 23; got != want {
				t.Fatalf("forwarded_for = %q with %d fields", ev.ForwardedFor, n)
			}
			if got, want := ev.ContentType == "text/html", n >= 33; got != want {
				t.Fatalf("content_type = %q with %d fields", ev.ContentType, n)
			}
		})
	}
}

func TestDerivedEventIDIsDeterministic(t *testing.T) {
	vals := fields33()
	line := []byte(join(strings.Fields(header33)[:12], vals))
	a, errA := cloudfront.ParseRecord(line)
	b, errB := cloudfront.ParseRecord(line)
	vals["sc-bytes"] = "393"
	c, errC := cloudfront.ParseRecord([]byte(join(strings.Fields(header33)[:12], vals)))
	if err := errors.Join(errA, errB, errC); err != nil {
		t.Fatal(err)
	}
	if a.EventID != b.EventID || a.EventID == c.EventID || len(a.EventID) != len("cf-")+32 {
		t.Fatalf("ids %q %q %q: want equal for equal lines, different otherwise", a.EventID, b.EventID, c.EventID)
	}
}

func TestParseLineValues(t *testing.T) {
	tests := []struct {
		name  string
		edit  map[string]string
		check func(t *testing.T, ev event.Event)
	}{
		{"ipv6 client", map[string]string{"c-ip": "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"}, func(t *testing.T, ev event.Event) {
			want(t, "client_ip", ev.ClientIP, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6")
		}},
		{"unparsable client ip dropped", map[string]string{"c-ip": "not-an-ip"}, func(t *testing.T, ev event.Event) {
			want(t, "client_ip", ev.ClientIP, "")
		}},
		{"status 000", map[string]string{"sc-status": "000"}, func(t *testing.T, ev event.Event) {
			want(t, "status", ev.Status, 0)
			want(t, "event_type", ev.EventType, event.TypeRequest)
		}},
		{"forwarded list without space", map[string]string{"x-forwarded-for": "81.2.69.142,216.160.83.56"}, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "81.2.69.142|216.160.83.56")
		}},
		{"forwarded list with raw space", map[string]string{"x-forwarded-for": "81.2.69.142, 216.160.83.56"}, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "81.2.69.142|216.160.83.56")
		}},
		{"forwarded host:port kept", map[string]string{"x-forwarded-for": "localhost:8080"}, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "localhost:8080")
		}},
		{"user-agent prefix stripped", map[string]string{"cs(User-Agent)": "User-Agent:%20Mozilla/4.0%20(compatible;%20MSIE%207.0;%20Windows%20NT%205.1;%20360SE)"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; 360SE)")
		}},
		{"double-encoded user agent", map[string]string{"cs(User-Agent)": "Mozilla/5.0%2520(X11)"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "Mozilla/5.0 (X11)")
		}},
		{"tab in value", map[string]string{"cs(User-Agent)": "a%09b"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "a\tb")
		}},
		{"literal percent kept", map[string]string{"cs-uri-stem": "/sale/50%25/50%25off.jpg"}, func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/sale/50%/50%off.jpg")
		}},
		{"double-encoded path", map[string]string{"cs-uri-stem": "/media/launch%2520film.mp4"}, func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/media/launch film.mp4")
			want(t, "event_type", ev.EventType, event.TypeView)
		}},
		{"query decoded once, structure kept", map[string]string{"cs-uri-query": "q=a%2520b%2526c&download=1"}, func(t *testing.T, ev event.Event) {
			want(t, "query", ev.Query, "q=a%20b%26c&download=1")
			want(t, "event_type", ev.EventType, event.TypeDownload)
		}},
		{"referrer and domain", map[string]string{"cs(Referer)": "https://WWW.Test.com:443/global%3Fx"}, func(t *testing.T, ev event.Event) {
			want(t, "referrer", ev.Referrer, "https://WWW.Test.com:443/global?x")
			want(t, "referring_domain", ev.ReferringDomain, "test.com")
		}},
		{"host header preferred and lower-cased", map[string]string{"x-host-header": "Media.Example.COM"}, func(t *testing.T, ev event.Event) {
			want(t, "host", ev.Host, "media.example.com")
		}},
		{"distribution host when no host header", map[string]string{"x-host-header": "-"}, func(t *testing.T, ev event.Event) {
			want(t, "host", ev.Host, "d111111abcdef8.cloudfront.net")
		}},
		{"dash means empty", map[string]string{"cs(User-Agent)": "-", "x-edge-location": "-", "sc-bytes": "-"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "")
			want(t, "edge_location", ev.EdgeLocation, "")
			want(t, "bytes", ev.Bytes, int64(0))
		}},
		{"invalid utf8 escapes read as latin-1", map[string]string{"cs(User-Agent)": "ok%FF%FEend"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "okÿþend")
		}},
		{"raw invalid utf8 read as latin-1", map[string]string{"cs(User-Agent)": "ok\xffend"}, func(t *testing.T, ev event.Event) {
			want(t, "user_agent", ev.UserAgent, "okÿend")
		}},
		{"encoded utf8 decoded", map[string]string{"cs-uri-stem": "/bilder/%C3%A4pfel.png"}, func(t *testing.T, ev event.Event) {
			want(t, "uri", ev.URI, "/bilder/äpfel.png")
		}},
		{"time taken rounding", map[string]string{"time-taken": "1.2345"}, func(t *testing.T, ev event.Event) {
			wantNum(t, "time_taken_ms", ev.TimeTakenMS, 1235)
		}},
		{"time taken whole seconds", map[string]string{"time-taken": "2"}, func(t *testing.T, ev event.Event) {
			wantNum(t, "time_taken_ms", ev.TimeTakenMS, 2000)
		}},
		{"range continuation is not a view", map[string]string{"cs-uri-stem": "/v.mp4", "sc-status": "206", "sc-range-start": "1048576"}, func(t *testing.T, ev event.Event) {
			want(t, "event_type", ev.EventType, event.TypeRequest)
		}},
		{"range start 0 is a view", map[string]string{"cs-uri-stem": "/v.mp4", "sc-status": "206", "sc-range-start": "0"}, func(t *testing.T, ev event.Event) {
			want(t, "event_type", ev.EventType, event.TypeView)
		}},
		{"empty request id column derives an id", map[string]string{"x-edge-request-id": ""}, func(t *testing.T, ev event.Event) {
			if !strings.HasPrefix(ev.EventID, "cf-") {
				t.Fatalf("event_id = %q, want a derived cf- id", ev.EventID)
			}
		}},
		{"over-long request id derives an id", map[string]string{"x-edge-request-id": strings.Repeat("r", 513)}, func(t *testing.T, ev event.Event) {
			if !strings.HasPrefix(ev.EventID, "cf-") {
				t.Fatalf("event_id = %q, want a derived cf- id", ev.EventID)
			}
		}},
		{"empty host header column", map[string]string{"x-host-header": ""}, func(t *testing.T, ev event.Event) {
			want(t, "host", ev.Host, "d111111abcdef8.cloudfront.net")
		}},
		{"leap day", map[string]string{"date": "2024-02-29"}, func(t *testing.T, ev event.Event) {
			want(t, "event_time", ev.EventTime, time.Date(2024, 2, 29, 21, 2, 31, 0, time.UTC))
		}},
	}
	l := mustLayout(t, header33)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals := fields33()
			for k, v := range tc.edit {
				vals[k] = v
			}
			ev, err := cloudfront.ParseLine(l, []byte(join(strings.Fields(header33), vals)))
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, &ev)
			for _, s := range []string{ev.UserAgent, ev.URI, ev.Query, ev.Referrer} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 in %q", s)
				}
			}
			tc.check(t, ev)
		})
	}
}

// wantNum fails the test unless got points to wantV.
func wantNum(t *testing.T, name string, got *int64, wantV int64) {
	t.Helper()
	if got == nil || *got != wantV {
		t.Fatalf("%s = %s, want %d", name, fmtNum(got), wantV)
	}
}

// fmtNum formats an optional number: "absent" for nil.
func fmtNum(v *int64) string {
	if v == nil {
		return "absent"
	}
	return strconv.FormatInt(*v, 10)
}

// want fails the test if got != wantV.
func want[T comparable](t *testing.T, name string, got, wantV T) {
	t.Helper()
	if got != wantV {
		t.Fatalf("%s = %#v, want %#v", name, got, wantV)
	}
}

func TestParseLineErrors(t *testing.T) {
	l := mustLayout(t, header33)
	tests := []struct {
		name   string
		line   string
		err    error
		reason string
	}{
		{"truncated", strings.Join(strings.Split(line33, "\t")[:31], "\t"), cloudfront.ErrFieldCount, "has 31 fields, layout has 33"},
		{"extra field", line33 + "\textra", cloudfront.ErrFieldCount, "has 34 fields, layout has 33"},
		{"empty", "", cloudfront.ErrFieldCount, "has 1 fields"},
		{"bad month", strings.Replace(line33, "2019-12-04", "2019-13-04", 1), cloudfront.ErrBadTime, "out of range"},
		{"feb 30", strings.Replace(line33, "2019-12-04", "2019-02-30", 1), cloudfront.ErrBadTime, "out of range"},
		{"bad date shape", strings.Replace(line33, "2019-12-04", "04/12/2019", 1), cloudfront.ErrBadTime, "YYYY-MM-DD"},
		{"before 1970", strings.Replace(line33, "2019-12-04", "1969-12-31", 1), cloudfront.ErrBadTime, "out of range"},
		{"zero time", strings.Replace(strings.Replace(line33, "2019-12-04", "0001-01-01", 1), "21:02:31", "00:00:00", 1), cloudfront.ErrBadTime, "out of range"},
		{"bad hour", strings.Replace(line33, "21:02:31", "24:02:31", 1), cloudfront.ErrBadTime, "out of range"},
		{"missing date", strings.Replace(line33, "2019-12-04", "-", 1), cloudfront.ErrBadTime, "YYYY-MM-DD"},
		{"bad bytes", strings.Replace(line33, "\t392\t", "\t39x\t", 1), cloudfront.ErrBadNumber, "sc-bytes"},
		{"negative bytes", strings.Replace(line33, "\t392\t", "\t-392\t", 1), cloudfront.ErrBadNumber, "sc-bytes"},
		{"bad status", strings.Replace(line33, "\t200\t", "\t2000\t", 1), cloudfront.ErrBadNumber, "sc-status"},
		{"bad time taken", strings.Replace(line33, "\t0.001\t-\t", "\t0.0x1\t-\t", 1), cloudfront.ErrBadNumber, "time-taken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cloudfront.ParseLine(l, []byte(tc.line))
			var le *cloudfront.LineError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want *LineError", err)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.err)
			}
			if !strings.Contains(le.Reason, tc.reason) {
				t.Fatalf("reason = %q, want it to contain %q", le.Reason, tc.reason)
			}
			if le.Raw != tc.line || le.Line != 0 {
				t.Fatalf("raw/line = %q/%d, want the input line and 0", le.Raw, le.Line)
			}
		})
	}
}

func TestLineErrorMessage(t *testing.T) {
	e := &cloudfront.LineError{Line: 14, Reason: "has 31 fields, layout has 33", Err: cloudfront.ErrFieldCount}
	want(t, "Error()", e.Error(), "cloudfront: line 14: wrong field count: has 31 fields, layout has 33")
	e.Line = 0
	want(t, "Error()", e.Error(), "cloudfront: wrong field count: has 31 fields, layout has 33")
}

func TestLayouts(t *testing.T) {
	tests := []struct {
		name     string
		fields   string
		err      string
		standard bool
	}{
		{"current", header33, "", true},
		{"historical prefix", strings.Join(strings.Fields(header33)[:26], " "), "", true},
		{"case-insensitive names", strings.ToUpper(header33), "", true},
		{"reordered", "time date c-ip", "", false},
		{"unknown names kept as skipped columns", "date time some-new-field", "", false},
		{"non-standard prefix length", strings.Join(strings.Fields(header33)[:13], " "), "", false},
		{"empty", "", "no fields", false},
		{"duplicate", "date time c-ip c-ip", `"c-ip" appears twice`, false},
		{"no time", "c-ip sc-status", "must include date and time", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := cloudfront.NewLayout(strings.Fields(tc.fields))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, cloudfront.ErrBadLayout) {
					t.Fatalf("err = %v, want ErrBadLayout containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want(t, "Standard()", l.Standard(), tc.standard)
			want(t, "Len()", l.Len(), len(strings.Fields(tc.fields)))
		})
	}
	if _, err := cloudfront.StandardLayout(31); !errors.Is(err, cloudfront.ErrBadLayout) {
		t.Fatalf("StandardLayout(31) err = %v, want ErrBadLayout", err)
	}
	l, err := cloudfront.ParseFieldsDirective([]byte("#Fields: " + header33 + "\r\n"))
	if err != nil || l.Directive() != "#Fields: "+header33 || !l.Standard() {
		t.Fatalf("ParseFieldsDirective = %v, %v", l, err)
	}
	if _, err := cloudfront.ParseFieldsDirective([]byte("#Version: 1.0")); !errors.Is(err, cloudfront.ErrBadLayout) {
		t.Fatalf("ParseFieldsDirective(#Version) err = %v", err)
	}
}

func TestCustomOrderMapsByName(t *testing.T) {
	l := mustLayout(t, "sc-status cs-uri-stem time date c-ip cs-method")
	ev, err := cloudfront.ParseLine(l, []byte("200\t/a/photo.JPG\t10:00:00\t2020-01-02\t10.0.0.1\tGET"))
	if err != nil {
		t.Fatal(err)
	}
	checkEvent(t, &ev)
	want(t, "status", ev.Status, 200)
	want(t, "uri", ev.URI, "/a/photo.JPG")
	want(t, "event_time", ev.EventTime, time.Date(2020, 1, 2, 10, 0, 0, 0, time.UTC))
	want(t, "event_type", ev.EventType, event.TypeView)
}
