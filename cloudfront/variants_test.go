package cloudfront_test

import (
	"bytes"
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

// readVariant reads a file of testdata/variants with a Reader and returns
// its events and its line errors, in order.
func readVariant(t *testing.T, name string) ([]event.Event, []*cloudfront.LineError) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "variants", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := cloudfront.NewReader(f)
	var evs []event.Event
	var bad []*cloudfront.LineError
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs, bad
		}
		var le *cloudfront.LineError
		if errors.As(err, &le) {
			bad = append(bad, le)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkEvent(t, &ev)
		evs = append(evs, ev)
	}
}

const iphoneSafari10 = "Mozilla/5.0 (iPhone; CPU iPhone OS 10_2_1 like Mac OS X) AppleWebKit/602.4.6 (KHTML, like Gecko) Version/10.0 Mobile/14D27 Safari/602.1"

// TestVariantStandard24 reads the AWS 2014 example in its 24-field layout.
func TestVariantStandard24(t *testing.T) {
	evs, bad := readVariant(t, "standard-24-fields.log")
	if len(evs) != 2 || len(bad) != 0 {
		t.Fatalf("%d events, %d bad lines; want 2 and 0: %v", len(evs), len(bad), bad)
	}
	a, b := evs[0], evs[1]
	want(t, "event_time", a.EventTime, time.Date(2014, 5, 23, 1, 13, 11, 0, time.UTC))
	want(t, "uri", a.URI, "/view/my/file.html")
	want(t, "user_agent (double-encoded)", a.UserAgent, iphoneSafari10)
	want(t, "referring_domain", a.ReferringDomain, "displaymyfiles.com")
	want(t, "cache_result", a.CacheResult, "RefreshHit")
	want(t, "protocol_version (24th field)", a.ProtocolVersion, "HTTP/1.1")
	want(t, "edge_response_result", a.EdgeResponseResult, "RefreshHit")
	want(t, "request_bytes (- is absent)", a.RequestBytes, int64(0))
	wantNum(t, "time_taken_ms", a.TimeTakenMS, 1)
	want(t, "status", b.Status, 304)
	want(t, "event_type (304 of an mp3)", b.EventType, event.TypeView)
	want(t, "query", b.Query, "a=b&c=d")
	want(t, "bytes", b.Bytes, int64(2390282))
	if a.TimeToFirstByteMS != nil || a.ContentLength != nil {
		t.Fatalf("a 24-field line has no time-to-first-byte or content length: %v %v", a.TimeToFirstByteMS, a.ContentLength)
	}
}

// TestVariantStandard26 reads the AWS 2019 example in its 26-field layout.
func TestVariantStandard26(t *testing.T) {
	evs, bad := readVariant(t, "standard-26-fields.log")
	if len(evs) != 2 || len(bad) != 0 {
		t.Fatalf("%d events, %d bad lines; want 2 and 0: %v", len(evs), len(bad), bad)
	}
	want(t, "user_agent", evs[0].UserAgent, "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)")
	want(t, "user_agent", evs[1].UserAgent, "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)")
	want(t, "protocol_version", evs[1].ProtocolVersion, "HTTP/1.1")
	want(t, "event_id", evs[1].EventID, "xGN7KWpVEmB9Dp7ctcVFQC4E-nrcOcEKS3QyAez--06dV7TEXAMPLE==")
	want(t, "host", evs[1].Host, "d111111abcdef8.cloudfront.net")
}

// TestVariantStandard33TabHeader reads a 33-field file whose header lines
// separate their words with tabs, with a zero time-taken and a last line
// with a stray trailing tab.
func TestVariantStandard33TabHeader(t *testing.T) {
	evs, bad := readVariant(t, "standard-33-fields-tab-header.log")
	if len(evs) != 2 || len(bad) != 1 {
		t.Fatalf("%d events, %d bad lines; want 2 and 1", len(evs), len(bad))
	}
	if !errors.Is(bad[0], cloudfront.ErrFieldCount) || bad[0].Line != 5 || !strings.Contains(bad[0].Reason, "has 34 fields") {
		t.Fatalf("bad line = %v, want line 5 with 34 fields", bad[0])
	}
	zero := evs[1]
	wantNum(t, "time_taken_ms of 0.000", zero.TimeTakenMS, 0)
	wantNum(t, "time_to_first_byte_ms of 0.000", zero.TimeToFirstByteMS, 0)
	if doc := string(zero.AppendJSON(nil)); !strings.Contains(doc, `"time_taken_ms":0,`) {
		t.Fatalf("a zero time-taken is missing from the document: %s", doc)
	}
	wantNum(t, "content_length", zero.ContentLength, 78)
	want(t, "client_port", zero.ClientPort, 11040)
	want(t, "tls_protocol", zero.TLSProtocol, "TLSv1.2")
	want(t, "edge_detailed_result", zero.EdgeDetailedResult, "Hit")
}

// TestVariantRealtimeWithFieldsHeader reads a real-time record saved under
// a #Fields header naming timestamp and the real-time spellings; the same
// record without the header, parsed with the field list as configuration,
// must give the same document.
func TestVariantRealtimeWithFieldsHeader(t *testing.T) {
	evs, bad := readVariant(t, "realtime-with-fields-header.log")
	if len(evs) != 1 || len(bad) != 0 {
		t.Fatalf("%d events, %d bad lines; want 1 and 0: %v", len(evs), len(bad), bad)
	}
	ev := evs[0]
	want(t, "event_time", ev.EventTime, time.Date(2020, 12, 7, 20, 52, 1, 541e6, time.UTC))
	want(t, "uri", ev.URI, "/i")
	want(t, "host", ev.Host, "test.cloudfront.net")
	want(t, "user_agent", ev.UserAgent, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:83.0) Gecko/20100101 Firefox/83.0")
	want(t, "referrer", ev.Referrer, "http://localhost:5000/page-2")
	want(t, "country", ev.Geo.CountryISO, "US")
	wantNum(t, "time_to_first_byte_ms", ev.TimeToFirstByteMS, 42)
	wantNum(t, "content_length", ev.ContentLength, 35)
	want(t, "request_bytes", ev.RequestBytes, int64(745))
	if !strings.HasPrefix(ev.Query, "stm=1607374321563&e=pp&url=http%3A%2F%2Flocalhost") {
		t.Fatalf("query = %.60q, want the query decoded once", ev.Query)
	}

	// The ingester sends it with its header, and the consumer parses it.
	raw, err := os.ReadFile(filepath.Join("testdata", "variants", "realtime-with-fields-header.log"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := cloudfront.NewRecordReader(bytes.NewReader(raw)).Next()
	if err != nil {
		t.Fatalf("RecordReader: %v", err)
	}
	viaRecord, err := cloudfront.ParseRecord(rec.Data)
	if err != nil || !bytes.Equal(viaRecord.AppendJSON(nil), ev.AppendJSON(nil)) {
		t.Fatalf("the ingested record parses differently (%v):\n%s\n%s", err, viaRecord.AppendJSON(nil), ev.AppendJSON(nil))
	}

	names, err := os.ReadFile(filepath.Join("testdata", "variants", "realtime-40-fields.fields"))
	if err != nil {
		t.Fatal(err)
	}
	record, err := os.ReadFile(filepath.Join("testdata", "variants", "realtime-40-fields.record"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cloudfront.NewRealtimeParser(strings.Fields(string(names)))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := p.Parse(record)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := ev.AppendJSON(nil), rt.AppendJSON(nil); !bytes.Equal(a, b) {
		t.Fatalf("the record with a header and without differ:\n%s\n%s", a, b)
	}
}

// TestVariantRTMP: an RTMP streaming log is rejected with a reason that
// says what it is, with or without its header, and never read as web
// requests with status 0.
func TestVariantRTMP(t *testing.T) {
	evs, bad := readVariant(t, "rtmp-streaming.log")
	if len(evs) != 0 {
		t.Fatalf("RTMP playback events read as requests: %+v", evs)
	}
	if len(bad) != 7 || !errors.Is(bad[0], cloudfront.ErrStreamingLog) || bad[0].Line != 2 {
		t.Fatalf("bad lines %v, want the header (line 2) rejected with ErrStreamingLog and 6 lines after it", bad)
	}
	for _, le := range bad[1:] {
		if !errors.Is(le, cloudfront.ErrNoLayout) || !strings.Contains(le.Reason, "RTMP") {
			t.Fatalf("line %d: %v, want ErrNoLayout naming RTMP", le.Line, le)
		}
	}

	raw, err := os.ReadFile(filepath.Join("testdata", "variants", "rtmp-streaming.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	// Without the header: every line on its own, as a Kinesis record.
	for _, line := range lines[2:] {
		_, err := cloudfront.ParseRecord([]byte(line))
		if !errors.Is(err, cloudfront.ErrStreamingLog) {
			t.Fatalf("headerless RTMP line: %v, want ErrStreamingLog", err)
		}
	}
	// With the header in the record.
	if _, err := cloudfront.ParseRecord([]byte(lines[1] + "\n" + lines[2])); !errors.Is(err, cloudfront.ErrStreamingLog) {
		t.Fatalf("RTMP record with its header: %v, want ErrStreamingLog", err)
	}
	// Ingestion stops at the header instead of skipping every line.
	rr := cloudfront.NewRecordReader(bytes.NewReader(raw))
	if _, err := rr.Next(); !errors.Is(err, cloudfront.ErrStreamingLog) {
		t.Fatalf("RecordReader: %v, want ErrStreamingLog", err)
	}
}
