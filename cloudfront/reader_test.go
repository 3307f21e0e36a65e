package cloudfront_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

const fixtureName = "E1EXAMPLE.2019-12-04-21.mixed-33-fields.log"

// fixturePath is the CloudFront fixture in this package's testdata folder
// (see testdata/README.md for its source).
func fixturePath(t testing.TB) string {
	t.Helper()
	p := filepath.Join("testdata", fixtureName)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// result is one outcome of Reader.Next.
type result struct {
	ev  event.Event
	err error
}

// readAll drains a Reader until io.EOF or a non-line error.
func readAll(t testing.TB, r *cloudfront.Reader) []result {
	t.Helper()
	var out []result
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		var le *cloudfront.LineError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, result{ev, err})
		if len(out) > 1000 {
			t.Fatal("reader does not end")
		}
	}
}

func TestReaderFixture(t *testing.T) {
	f, err := os.Open(fixturePath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := cloudfront.NewReader(f)
	got := readAll(t, r)
	if len(got) != 12 {
		t.Fatalf("got %d results, want 11 events and 1 error", len(got))
	}
	for i, res := range got[:11] {
		if res.err != nil {
			t.Fatalf("event %d: %v", i, res.err)
		}
		checkEvent(t, &res.ev)
	}
	last := got[11].err
	var le *cloudfront.LineError
	if !errors.As(last, &le) || !errors.Is(last, cloudfront.ErrFieldCount) || le.Line != 14 ||
		!strings.Contains(le.Reason, "has 31 fields") || !strings.HasPrefix(le.Raw, "2024-07-13\t15:29:45") {
		t.Fatalf("last line: %#v, want a LineError at line 14 for 31 fields", last)
	}
	if r.Layout() == nil || r.Layout().Len() != 33 {
		t.Fatalf("layout after the header = %v, want 33 fields", r.Layout())
	}

	tests := []struct {
		name  string
		i     int
		check func(t *testing.T, ev event.Event)
	}{
		{"ipv6", 1, func(t *testing.T, ev event.Event) {
			want(t, "client_ip", ev.ClientIP, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6")
		}},
		{"origin error with referrer", 3, func(t *testing.T, ev event.Event) {
			want(t, "status", ev.Status, 502)
			want(t, "cache_result", ev.CacheResult, "Error")
			want(t, "host", ev.Host, "www.example.com")
			want(t, "referring_domain", ev.ReferringDomain, "example.com")
			want(t, "uri", ev.URI, "/favicon.ico")
			want(t, "event_time", ev.EventTime, time.Date(2019, 12, 13, 22, 36, 27, 0, time.UTC))
		}},
		{"curl", 5, func(t *testing.T, ev event.Event) { want(t, "user_agent", ev.UserAgent, "curl/7.55.1") }},
		{"post with query", 6, func(t *testing.T, ev event.Event) {
			want(t, "method", ev.Method, "POST")
			want(t, "query", ev.Query, "source=global")
			want(t, "bytes", ev.Bytes, int64(10157))
			wantNum(t, "time_taken_ms", ev.TimeTakenMS, 238)
			want(t, "content_type", ev.ContentType, "application/json;charset=UTF-8")
		}},
		{"status 000", 7, func(t *testing.T, ev event.Event) { want(t, "status", ev.Status, 0) }},
		{"xff no space", 8, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "81.2.69.142|216.160.83.56")
		}},
		{"xff with space", 9, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "81.2.69.142|216.160.83.56")
		}},
		{"xff host:port", 10, func(t *testing.T, ev event.Event) {
			want(t, "forwarded_for", strings.Join(ev.ForwardedFor, "|"), "localhost:8080")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, got[tc.i].ev) })
	}

	t.Run("repeated request ids share an event id", func(t *testing.T) {
		ids := map[string]int{}
		for _, res := range got[:11] {
			ids[res.ev.EventID]++
		}
		want(t, "documents for hrsHM5…", ids["hrsHM5OM6sTIXUleC1G20YtDxMf5Cq0Jbz0pwhVpod2kgEn_W6akCQ=="], 5)
		want(t, "distinct ids", len(ids), 7)
	})
}

func TestReaderHeaderChangeMidFile(t *testing.T) {
	names := strings.Fields(header33)
	vals := fields33()
	custom := "cs-uri-stem date time sc-status cs-method"
	input := strings.Join([]string{
		"#Version: 1.0",
		"#Fields: " + strings.Join(names[:12], " "),
		join(names[:12], vals),
		join(names, vals), // 33 fields under a 12-field header
		"",
		"#Fields: " + custom,
		"/b.png\t2020-05-06\t07:08:09\t304\tGET",
		join(names[:12], vals), // 12 fields under a 4-field header
	}, "\n")
	got := readAll(t, cloudfront.NewReader(strings.NewReader(input)))
	if len(got) != 4 {
		t.Fatalf("got %d results, want 4", len(got))
	}
	if got[0].err != nil || got[0].ev.URI != "/index.html" {
		t.Fatalf("line 3: %+v %v", got[0].ev, got[0].err)
	}
	var le *cloudfront.LineError
	if !errors.As(got[1].err, &le) || le.Line != 4 || !errors.Is(le, cloudfront.ErrFieldCount) {
		t.Fatalf("line 4: err = %v, want field count error on line 4", got[1].err)
	}
	if got[2].err != nil || got[2].ev.URI != "/b.png" || got[2].ev.Status != 304 || got[2].ev.EventType != event.TypeView {
		t.Fatalf("line 7: %+v %v", got[2].ev, got[2].err)
	}
	if !errors.As(got[3].err, &le) || le.Line != 8 || !strings.Contains(le.Reason, "layout has 5") {
		t.Fatalf("line 8: err = %v", got[3].err)
	}
}

func TestReaderInputs(t *testing.T) {
	names := strings.Fields(header33)
	vals := fields33()
	line12 := join(names[:12], vals)
	long := strings.Replace(line33, "/index.html", "/"+strings.Repeat("a", 200<<10)+".html", 1)
	tests := []struct {
		name  string
		input string
		opts  []cloudfront.Option
		// want lists per result: "" for an event, else the sentinel's text.
		want []string
	}{
		{"no header infers by field count", line12 + "\n" + line33 + "\n", nil, []string{"", ""}},
		{"no trailing newline", "#Fields: " + header33 + "\n" + line33, nil, []string{""}},
		{"crlf", "#Fields: " + header33 + "\r\n" + line33 + "\r\n\r\n", nil, []string{""}},
		{"unknown count without header", "a\tb\tc\n" + line33, nil, []string{"wrong field count", ""}},
		{"with layout option", "/x\t2020-01-01\t00:00:00\n", []cloudfront.Option{cloudfront.WithLayout(mustLayout(t, "cs-uri-stem date time"))}, []string{""}},
		{"bad header then recovery", "#Fields: foo bar\n" + line33 + "\n#Fields: " + header33 + "\n" + line33, nil,
			[]string{"bad field layout", "no field layout for line", ""}},
		{"line over the limit is skipped", line33 + "\n" + strings.Repeat("x", 2*len(line33)) + "\n" + line33 + "\n",
			[]cloudfront.Option{cloudfront.WithMaxLineBytes(len(line33))}, []string{"", "line too long", ""}},
		{"line longer than the buffer parses", long + "\n" + line33, nil, []string{"", ""}},
		{"line longer than buffer and limit", line33 + "\n" + long + "\n" + line33,
			[]cloudfront.Option{cloudfront.WithMaxLineBytes(100 << 10)}, []string{"", "line too long", ""}},
		{"last line too long without newline", line33 + "\n" + long,
			[]cloudfront.Option{cloudfront.WithMaxLineBytes(100 << 10)}, []string{"", "line too long"}},
		{"empty input", "", nil, nil},
		{"only headers", "#Version: 1.0\n#Fields: " + header33 + "\n", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, cloudfront.NewReader(strings.NewReader(tc.input), tc.opts...))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d results %v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if w == "" {
					if got[i].err != nil {
						t.Fatalf("result %d: %v", i, got[i].err)
					}
					checkEvent(t, &got[i].ev)
					continue
				}
				var le *cloudfront.LineError
				if !errors.As(got[i].err, &le) || !strings.Contains(got[i].err.Error(), w) {
					t.Fatalf("result %d: err = %v, want a LineError %q", i, got[i].err, w)
				}
				if len(le.Raw) > 4<<10 {
					t.Fatalf("LineError.Raw is %d bytes, want at most 4 KiB", len(le.Raw))
				}
			}
		})
	}
}

// failingReader returns data then a non-EOF error.
type failingReader struct{ data string }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReaderReadErrorIsFinal(t *testing.T) {
	r := cloudfront.NewReader(&failingReader{data: line33 + "\n"})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := r.Next()
		var le *cloudfront.LineError
		if err == nil || errors.As(err, &le) || err.Error() != "disk on fire" {
			t.Fatalf("err = %v, want the read error every time", err)
		}
	}
}

func TestReadLineAndRecords(t *testing.T) {
	names := strings.Fields(header33)
	vals := fields33()
	custom := "cs-uri-stem date time sc-status"
	input := "#Fields: " + header33 + "\n" + line33 + "\n" +
		"#Fields: " + strings.Join(names[:24], " ") + "\n" + join(names[:24], vals) + "\n" +
		"#Fields: " + custom + "\n/b.png\t2020-05-06\t07:08:09\t304\n"
	r := cloudfront.NewReader(strings.NewReader(input))
	var records [][]byte
	for {
		line, l, err := r.ReadLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, cloudfront.AppendRecord(nil, l, line))
	}
	if len(records) != 3 {
		t.Fatalf("got %d records, want 3", len(records))
	}
	for i, hasHeader := range []bool{false, false, true} {
		if got := strings.HasPrefix(string(records[i]), "#Fields: "); got != hasHeader {
			t.Fatalf("record %d %q: header %v, want %v", i, records[i], got, hasHeader)
		}
		ev, err := cloudfront.ParseRecord(records[i])
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		checkEvent(t, &ev)
	}
}

func TestAppendRecordSendsHeaderForMismatchedLine(t *testing.T) {
	l := mustLayout(t, header33)
	// A truncated 33-field line that happens to have 26 fields must not be
	// read as a 26-field line by the consumer.
	short := strings.Join(strings.Split(line33, "\t")[:26], "\t")
	rec := cloudfront.AppendRecord(nil, l, []byte(short+"\n"))
	if !strings.HasPrefix(string(rec), "#Fields: ") {
		t.Fatalf("record %q has no header", rec)
	}
	if _, err := cloudfront.ParseRecord(rec); !errors.Is(err, cloudfront.ErrFieldCount) {
		t.Fatalf("ParseRecord err = %v, want ErrFieldCount", err)
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		err  error
	}{
		{"empty", "", cloudfront.ErrRecord},
		{"only header", "#Fields: " + header33 + "\n", cloudfront.ErrRecord},
		{"two lines", line33 + "\n" + line33 + "\n", cloudfront.ErrRecord},
		{"bad header", "#Fields: a b\n" + line33, cloudfront.ErrBadLayout},
		{"unknown count", "a\tb", cloudfront.ErrFieldCount},
		{"bad date", strings.Replace(line33, "2019-12-04", "2019-12-xx", 1), cloudfront.ErrBadTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cloudfront.ParseRecord([]byte(tc.data))
			var le *cloudfront.LineError
			if !errors.As(err, &le) || !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want a LineError wrapping %v", err, tc.err)
			}
		})
	}
}
