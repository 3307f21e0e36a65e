package collector_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/collector"
)

// TestRequests checks the answer to each kind of request, and that a
// request not answered 202 puts nothing into the producer.
func TestRequests(t *testing.T) {
	const token = "s3cret-token"
	big := strings.Repeat(" ", 70<<10) // white space: fine for the parser, too big for the limit
	many := strings.Repeat(event("x")+"\n", 6)
	tests := []struct {
		name         string
		method, path string
		contentType  string
		encoding     string
		auth         string // Authorization header
		body         string
		chunked      bool // hide the length so the limit is found while reading
		wantStatus   int
		wantAccepted int
		wantRejected []int  // lines
		wantError    string // substring of Response.Error
		wantHeader   [2]string
	}{
		{name: "one JSON event", contentType: "application/json", body: event("e-1"), wantStatus: 202, wantAccepted: 1},
		{name: "JSON with charset", contentType: "application/json; charset=utf-8", body: event("e-1"), wantStatus: 202, wantAccepted: 1},
		{name: "pretty-printed JSON event", contentType: "application/json", body: "{\n \"event_id\": \"e-1\",\n \"event_type\": \"share\",\n \"occurred_at\": \"2026-01-02T03:04:05Z\",\n \"asset_id\": \"a\",\n \"tenant_id\": \"t\"\n}\n", wantStatus: 202, wantAccepted: 1},
		{name: "NDJSON batch with blank lines and CRLF", contentType: "application/x-ndjson", body: event("e-1") + "\r\n\n" + event("e-2") + "\r\n   \n" + event("e-3"), wantStatus: 202, wantAccepted: 3},
		{name: "NDJSON with invalid lines rejects all", contentType: "application/x-ndjson",
			body:       ndjson(event("e-1"), `{"event_id":"e-2","event_type":"click","occurred_at":"2026-01-02T03:04:05Z","asset_id":"a","tenant_id":"t"}`, event("e-3"), `not json`, "", `{"event_id":"e 6"}`),
			wantStatus: 400, wantRejected: []int{2, 4, 6}, wantError: "3 of 5 events are invalid; nothing was accepted"},
		{name: "two objects as application/json", contentType: "application/json", body: event("e-1") + "\n" + event("e-2"), wantStatus: 400, wantRejected: []int{1}},
		{name: "empty body", contentType: "application/x-ndjson", body: "\n \n", wantStatus: 400, wantError: "no events"},
		{name: "unknown content type", contentType: "text/plain", body: event("e-1"), wantStatus: 415, wantError: "application/x-ndjson"},
		{name: "no content type", body: event("e-1"), wantStatus: 415},
		{name: "compressed body", contentType: "application/json", encoding: "gzip", body: event("e-1"), wantStatus: 415, wantError: "gzip"},
		{name: "GET", method: http.MethodGet, contentType: "application/json", wantStatus: 405, wantHeader: [2]string{"Allow", "POST"}},
		{name: "unknown path", path: "/v1/event", contentType: "application/json", body: event("e-1"), wantStatus: 404},
		{name: "body over the limit (Content-Length)", contentType: "application/json", body: event("e-1") + big, wantStatus: 413},
		{name: "body over the limit (chunked)", contentType: "application/json", body: event("e-1") + big, chunked: true, wantStatus: 413},
		{name: "too many events", contentType: "application/x-ndjson", body: many, wantStatus: 413, wantError: "6 events, limit is 5"},
		{name: "no token", auth: "-", contentType: "application/json", body: event("e-1"), wantStatus: 401, wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="leasehold"`}},
		{name: "wrong token", auth: "Bearer s3cret-tokem", contentType: "application/json", body: event("e-1"), wantStatus: 401},
		{name: "token as basic auth", auth: "Basic " + token, contentType: "application/json", body: event("e-1"), wantStatus: 401},
		{name: "token prefix", auth: "Bearer s3cret", contentType: "application/json", body: event("e-1"), wantStatus: 401},
		{name: "lowercase scheme", auth: "bearer " + token, contentType: "application/json", body: event("e-1"), wantStatus: 202, wantAccepted: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := collector.DefaultConfig()
			cfg.Token = token
			cfg.MaxBodyBytes = 64 << 10
			cfg.MaxEventsPerRequest = 5
			c, _ := newCollector(t, cfg)
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = collector.Path
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // not a *strings.Reader: length unknown
			}
			req := httptest.NewRequest(method, path, body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			switch tt.auth {
			case "":
				req.Header.Set("Authorization", "Bearer "+token)
			case "-":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			a := serve(t, c, req)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %+v", a.status, tt.wantStatus, a.body)
			}
			if a.body.Accepted != tt.wantAccepted {
				t.Errorf("accepted %d, want %d", a.body.Accepted, tt.wantAccepted)
			}
			var lines []int
			for _, r := range a.body.Rejected {
				lines = append(lines, r.Line)
				if len(r.Errors) == 0 {
					t.Errorf("line %d rejected without a reason", r.Line)
				}
			}
			if !reflect.DeepEqual(lines, tt.wantRejected) {
				t.Errorf("rejected lines %v, want %v", lines, tt.wantRejected)
			}
			if !strings.Contains(a.body.Error, tt.wantError) {
				t.Errorf("error %q does not contain %q", a.body.Error, tt.wantError)
			}
			if tt.wantStatus == 202 && a.body.Error != "" {
				t.Errorf("202 with error %q", a.body.Error)
			}
			if h := tt.wantHeader; h[0] != "" {
				// serve decoded only the body; check the header on a fresh recorder.
				rec := httptest.NewRecorder()
				req2 := httptest.NewRequest(method, path, strings.NewReader(tt.body))
				req2.Header = req.Header
				c.ServeHTTP(rec, req2)
				if got := rec.Header().Get(h[0]); got != h[1] {
					t.Errorf("%s: %q, want %q", h[0], got, h[1])
				}
			}
			if put := c.ProducerStats().RecordsPut; put != uint64(a.body.Accepted) {
				t.Errorf("producer got %d records, response says %d accepted", put, a.body.Accepted)
			}
		})
	}
}

// TestRejectedShape pins the JSON of a 400: the contract clients parse.
func TestRejectedShape(t *testing.T) {
	c, _ := newCollector(t, collector.DefaultConfig())
	body := ndjson(event("ok-1"),
		`{"event_id":"bad-2","event_type":"click","occurred_at":"yesterday","asset_id":"a","tenant_id":"t"}`,
		`[1,2]`)
	req := httptest.NewRequest(http.MethodPost, collector.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("status %d", rec.Code)
	}
	var got, want any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(`{
		"accepted": 0,
		"rejected": [
			{"line": 2, "event_id": "bad-2", "errors": [
				{"field": "event_type", "message": "\"click\" is not one of view, download, share, convert, permission_change"},
				{"field": "occurred_at", "message": "\"yesterday\" is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00.250Z)"}
			]},
			{"line": 3, "errors": [{"message": "body must be a JSON object, got an array"}]}
		],
		"error": "2 of 3 events are invalid; nothing was accepted"
	}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body\n%s\nwant the same as\n%v", rec.Body.String(), want)
	}
}

// TestPartitionKey checks events are keyed by the configured field.
func TestPartitionKey(t *testing.T) {
	for _, tt := range []struct {
		by   collector.PartitionBy
		want string
	}{{collector.ByAssetID, "asset-e-1"}, {collector.ByTenantID, "tenant-1"}} {
		t.Run(string(tt.by), func(t *testing.T) {
			cfg := collector.DefaultConfig()
			cfg.PartitionBy = tt.by
			c, k := newCollector(t, cfg)
			url, stop := served(t, c)
			if a := post(t, url, "application/json", "", event("e-1")); a.status != 202 {
				t.Fatalf("status %d %+v", a.status, a.body)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			_, keys := writtenIDs(t, k)
			if keys["e-1"] != tt.want {
				t.Errorf("partition key %q, want %q", keys["e-1"], tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*collector.Config)
		want   string
	}{
		{"defaults", func(*collector.Config) {}, ""},
		{"body below one event", func(c *collector.Config) { c.MaxBodyBytes = 1000 }, "max body bytes"},
		{"no events", func(c *collector.Config) { c.MaxEventsPerRequest = 0 }, "max events"},
		{"buffer below a request", func(c *collector.Config) { c.BufferRecords = 10; c.MaxEventsPerRequest = 11 }, "buffer records"},
		{"tiny buffer bytes", func(c *collector.Config) { c.BufferBytes = 1000 }, "buffer bytes"},
		{"negative wait", func(c *collector.Config) { c.BufferWait = -1 }, "buffer wait"},
		{"no retry after", func(c *collector.Config) { c.RetryAfter = 0 }, "retry after"},
		{"no grace", func(c *collector.Config) { c.ShutdownGrace = 0 }, "shutdown grace"},
		{"bad partition key", func(c *collector.Config) { c.PartitionBy = "user_id" }, "partition key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := collector.DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
