package transform_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
)

// rawIPs are the full addresses the tests below send; none may survive
// anywhere the pipeline stores data.
var rawIPs = []string{"2001:db8::1", "203.0.113.77", "203.0.113.077", "198.51.100.17", "192.0.2.43", "2001:db8:cafe:1::42", "89.160.20.112"}

func noRawIP(t *testing.T, where, s string) {
	t.Helper()
	for _, ip := range rawIPs {
		if strings.Contains(s, ip) {
			t.Errorf("%s holds the raw address %s: %s", where, ip, s)
		}
	}
}

// Defect 4: forwarded-for entries in the forms proxies write passed
// anonymize_ip unchanged.
func TestAnonymizeForwardedForForms(t *testing.T) {
	a, err := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"[2001:db8::1]", "[2001:db8::]"},
		{"[2001:db8::1]:4711", "[2001:db8::]:4711"},
		{"for=203.0.113.77", "for=203.0.113.0"},
		{`for="[2001:db8::1]:4711"`, `for="[2001:db8::]:4711"`},
		{"For=198.51.100.17;proto=https;by=192.0.2.43", "For=198.51.100.0;proto=https;by=192.0.2.0"},
		{"for=192.0.2.43:8080", `for="192.0.2.0:8080"`}, // quoted, as RFC 7239 wants a port
		{"for=unknown", "for=unknown"},
		{"for=_hidden;proto=http", "for=_hidden;proto=http"},
		{"for=1.2.3", "for=_redacted"},
		{"203.0.113.077", "203.0.113.0"},
		{"203.0.113.077:8080", "203.0.113.0:8080"},
		{"010.001.002.003", "10.1.2.0"},
		{"198.51.100.17:80", "198.51.100.0:80"},
		{"2001:db8:cafe:1::42", "2001:db8:cafe::"},
		{"::ffff:203.0.113.77", "::ffff:203.0.113.0"},
		{"1.2.3", transform.Redacted},
		{"0x7f.1", transform.Redacted},
		{"localhost:8080", "localhost:8080"},
		{"unknown", "unknown"},
		{"proxy.example.com", "proxy.example.com"},
	}
	for _, tc := range tests {
		if got := a.Anonymize(tc.in); got != tc.want {
			t.Errorf("Anonymize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every sink stores the event as AppendJSON writes it (the OpenSearch
// document, the S3 archive line, DynamoDB's doc attribute) plus, for
// DynamoDB, client_ip as an attribute: after anonymize_ip none holds a
// raw address, whatever form the forwarded-for header used.
func TestAnonymizedInEverySinksDocument(t *testing.T) {
	const xff = "[2001:db8::1],%20for=203.0.113.77,%20for=%22[2001:db8:cafe:1::42]:4711%22,%20203.0.113.077,%20198.51.100.17:80"
	line := "2026-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/assets/a-1/film.mp4\t200\t-\tMozilla/5.0\t-\t-\tHit\t" +
		"SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\tmedia.example.com\thttps\t23\t0.001\t" + xff +
		"\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\tvideo/mp4\t78\t-\t-"
	parse, err := transform.NewParser(transform.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	batch := messages([]byte(line))
	if batch, err = parse.Process(context.Background(), batch); err != nil || batch[0].Failed() != nil {
		t.Fatalf("parse: %v %v", err, batch[0].Failed())
	}
	if len(batch[0].Event.ForwardedFor) != 5 {
		t.Fatalf("forwarded_for %q: the test line does not carry the five forms", batch[0].Event.ForwardedFor)
	}
	if _, err := a.Process(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	ev := batch[0].Event
	noRawIP(t, "the document", string(ev.AppendJSON(nil)))
	noRawIP(t, "client_ip", ev.ClientIP)
	want := []string{"[2001:db8::]", "for=203.0.113.0", `for="[2001:db8:cafe::]:4711"`, "203.0.113.0", "198.51.100.0:80"}
	if !slices.Equal(ev.ForwardedFor, want) {
		t.Errorf("forwarded_for %q, want %q", ev.ForwardedFor, want)
	}
}

// A dead letter keeps no raw address when anonymize_ip is configured:
// Redact truncates the raw record (also of a record that never parsed),
// the event and the error text, and leaves the message the sinks share
// alone.
func TestRedactDeadLetters(t *testing.T) {
	a, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	// A truncated CloudFront line: it fails to parse, before anonymize_ip.
	truncated := messages([]byte("2026-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\t-\t/x\t200\t-\tcurl\t-\t-\tHit\tid\th\thttps\t23\t0.001\t203.0.113.77,%20[2001:db8::1]"))[0]
	truncated.Fail("parse", 1, errors.New("cloudfront: wrong field count near 89.160.20.112"))
	// An app event rejected by a sink after anonymize_ip ran.
	app := messages([]byte(`{"event_id":"e1","event_type":"view","occurred_at":"2026-12-04T10:00:00Z","asset_id":"a","tenant_id":"t","client_ip":"2001:db8::1"}`))[0]
	ev, err := appevent.Parse(app.Record.Data)
	if err != nil {
		t.Fatal(err)
	}
	app.Event, app.Parsed = ev, true
	app.Event.ForwardedFor = []string{"for=203.0.113.77"}
	if _, err := a.Process(context.Background(), []*processors.Message{app}); err != nil {
		t.Fatal(err)
	}
	shared := app.Event.ForwardedFor
	rejected := app.FailedCopy("opensearch", 1, errors.New("mapper_parsing_exception: preview of field's value: '198.51.100.17'"))

	for _, m := range []*processors.Message{truncated, rejected} {
		data := string(m.Record.Data)
		r := a.Redact(m)
		if r == m || !r.Redacted {
			t.Fatal("Redact must return a marked copy")
		}
		noRawIP(t, "the dead letter's raw data", string(r.Record.Data))
		noRawIP(t, "the dead letter's error", r.Failed().Err.Error())
		noRawIP(t, "the dead letter's event", string(r.Event.AppendJSON(nil)))
		if string(m.Record.Data) != data {
			t.Error("Redact changed the shared record")
		}
		if r.Failed().Stage != m.Failed().Stage || r.Failed().Sink != m.Failed().Sink || r.Failed().Attempts != m.Failed().Attempts {
			t.Errorf("failure %+v, want %+v with the reason scrubbed", r.Failed(), m.Failed())
		}
	}
	if shared[0] != "for=203.0.113.0" {
		t.Errorf("shared forwarded_for changed to %q", shared[0])
	}

	keep, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{KeepRawIPInDeadLetters: true})
	if keep.Redact(truncated) != truncated {
		t.Error("keep_raw_ip_in_dead_letters must keep the raw dead letter")
	}
}

func TestScrubText(t *testing.T) {
	a, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	tests := []struct{ in, want string }{
		{"no address here", "no address here"},
		{`{"client_ip":"203.0.113.77"}`, `{"client_ip":"203.0.113.0"}`},
		{"c-ip\t2001:db8::1\tx", "c-ip\t2001:db8::\tx"},
		{"203.0.113.77,%20198.51.100.17:8080", "203.0.113.0,%20198.51.100.0:8080"},
		{"for=%22[2001:db8:cafe:1::42]:4711%22", "for=%22[2001:db8:cafe::]:4711%22"},
		{"from 203.0.113.077.", "from 203.0.113.0."},
		{"21:02:31 2026-12-04 0.001 TLSv1.2 Chrome/78.0.3904.108", "21:02:31 2026-12-04 0.001 TLSv1.2 Chrome/78.0.3904.108"},
	}
	for _, tc := range tests {
		if got := string(a.ScrubText([]byte(tc.in))); got != tc.want {
			t.Errorf("ScrubText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// anonymize_ip keeps client_ip an address (it is an ip field in
// OpenSearch): a port is dropped, and an address-like value that does not
// parse is emptied.
func TestAnonymizeClientIPStaysAnAddress(t *testing.T) {
	a, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	for in, want := range map[string]string{"203.0.113.077": "203.0.113.0", "[2001:db8::1]:443": "2001:db8::", "1.2.3": "", "garbage": "garbage"} {
		batch := messages([]byte("-"))
		batch[0].Parsed, batch[0].Event.ClientIP = true, in
		if _, err := a.Process(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if got := batch[0].Event.ClientIP; got != want {
			t.Errorf("client_ip %q became %q, want %q", in, got, want)
		}
	}
}
