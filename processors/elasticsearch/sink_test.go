package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// fakeES answers the requests the sink makes the way Elasticsearch 8
// does (X-Elastic-Product on every answer), with per-item results chosen
// by the test. The conformance of these answers is checked against the
// real local Elasticsearch by integration.TestSearchBackends*.
type fakeES struct {
	srv     *httptest.Server
	product string                                  // X-Elastic-Product; default Elasticsearch
	ilm     bool                                    // _ilm/status answers 200
	onItem  func(id string, sent int) (int, string) // status and "type: reason"

	mu        sync.Mutex
	docs      map[string]string
	sent      map[string]int
	auth      []string
	templates map[string]json.RawMessage
	policies  map[string]json.RawMessage
}

func newFakeES(t *testing.T) *fakeES {
	f := &fakeES{product: "Elasticsearch", docs: map[string]string{}, sent: map[string]int{}, templates: map[string]json.RawMessage{}, policies: map[string]json.RawMessage{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeES) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.product != "" {
		w.Header().Set("X-Elastic-Product", f.product)
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/_ilm/status":
		if !f.ilm {
			w.WriteHeader(http.StatusMethodNotAllowed) // what the integ-test zip answers
			fmt.Fprint(w, `{"error":"Incorrect HTTP method for uri [/_ilm/status] and method [GET], allowed: [POST]","status":405}`)
			return
		}
		fmt.Fprint(w, `{"operation_mode":"RUNNING"}`)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_ilm/policy/"):
		f.policies[strings.TrimPrefix(r.URL.Path, "/_ilm/policy/")] = body
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		f.templates[strings.TrimPrefix(r.URL.Path, "/_index_template/")] = body
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		type item struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error,omitempty"`
		}
		var items []map[string]item
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var a struct {
				Index struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"index"`
			}
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil || !sc.Scan() {
				http.Error(w, "bad bulk", http.StatusBadRequest)
				return
			}
			id := a.Index.ID
			status, errType := 201, ""
			if f.onItem != nil {
				status, errType = f.onItem(id, f.sent[id])
			}
			f.sent[id]++
			it := item{Status: status}
			if status >= 300 {
				typ, reason, _ := strings.Cut(errType, ": ")
				it.Error = &struct {
					Type   string `json:"type"`
					Reason string `json:"reason"`
				}{typ, reason}
			} else {
				f.docs[a.Index.Index+"/"+id] = sc.Text()
			}
			items = append(items, map[string]item{"index": it})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": true, "items": items})
	default:
		http.Error(w, "fake: unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

type memDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
}

func (d *memDL) DeadLetter(_ context.Context, m []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, m...)
	return nil
}

func (d *memDL) got() []*processors.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*processors.Message(nil), d.msgs...)
}

var day0 = time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC)

func msgs(n int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: "events", ShardID: "shardId-000000000001", SequenceNumber: fmt.Sprintf("%030d", i)},
			Parsed: true,
			Event:  event.Event{EventTime: day0.Add(time.Duration(i) * time.Minute), EventType: event.TypeView, EventID: fmt.Sprintf("ev-%d", i), ClientIP: "192.0.2.1"},
		}
	}
	return out
}

func testCfg(f *fakeES) Config {
	return Config{URL: f.srv.URL, FlushInterval: 5 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}
}

func write(t *testing.T, s *Sink, ms []*processors.Message) (*memDL, processors.ShardSink) {
	t.Helper()
	dl := &memDL{}
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000000000001", Start: checkpoint.Checkpoint{}}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	if err := ss.Write(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ss.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return dl, ss
}

// Items: 429 and 5xx are resent until indexed; cannot-write (a closed
// index) is resent, never dead-lettered; a mapping error is dead-lettered
// with the cluster's reason. Each document lands in its event day's index
// under its event id.
func TestItemResults(t *testing.T) {
	f := newFakeES(t)
	f.onItem = func(id string, sent int) (int, string) {
		switch {
		case id == "ev-3":
			return 400, "mapper_parsing_exception: failed to parse field [client_ip] of type [ip]"
		case id == "ev-5" && sent < 2:
			return 429, "es_rejected_execution_exception: rejected execution"
		case id == "ev-7" && sent < 1:
			return 503, "unavailable_shards_exception: primary shard is not active"
		case id == "ev-9" && sent < 2:
			return 400, "index_closed_exception: closed"
		}
		return 201, ""
	}
	s, err := New(t.Context(), testCfg(f), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ms := msgs(80)
	dl, ss := write(t, s, ms)
	if ss.Durable() != ms[79].Position() {
		t.Fatalf("Durable %v", ss.Durable())
	}
	got := dl.got()
	if len(got) != 1 || got[0].Event.EventID != "ev-3" || !processors.IsPermanent(got[0].Failed().Err) ||
		!strings.Contains(got[0].Failed().Err.Error(), "mapper_parsing_exception") {
		t.Fatalf("dead letters %v, want only ev-3 with its mapping reason", got)
	}
	if ms[3].Failed() != nil {
		t.Error("the message shared with other sinks was marked failed")
	}
	if len(f.docs) != 79 {
		t.Fatalf("%d documents, want 79", len(f.docs))
	}
	for _, k := range []string{"leasehold-events-2026.03.09/ev-0", "leasehold-events-2026.03.10/ev-79"} {
		if _, ok := f.docs[k]; !ok {
			t.Errorf("no document %s", k)
		}
	}
	if st := s.Stats(); st.ItemsRetried != 5 || st.ItemsDeadLettered != 1 || st.DocsIndexed != 79 {
		t.Errorf("stats %+v", st)
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"none", func(*Config) {}, ""},
		{"basic", func(c *Config) { c.Username, c.Password = "elastic", "s3cret" }, "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:s3cret"))},
		{"api key", func(c *Config) { c.APIKey = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==" },
			"APIKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="}, // the scheme is case-insensitive
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeES(t)
			cfg := testCfg(f)
			tt.mod(&cfg)
			s, err := New(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			write(t, s, msgs(2))
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.auth) < 2 {
				t.Fatalf("%d requests", len(f.auth))
			}
			for _, a := range f.auth {
				if a != tt.want {
					t.Fatalf("Authorization %q, want %q", a, tt.want)
				}
			}
		})
	}
}

// An Elastic Cloud ID decodes to the deployment's HTTPS endpoint.
func TestCloudID(t *testing.T) {
	id := "my-deployment:" + base64.StdEncoding.EncodeToString([]byte("eu-west-1.aws.found.io:443$abc123$def456"))
	off := false
	s, err := New(t.Context(), Config{CloudID: id, Template: &off}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	tr, ok := s.client.Transport.(*elastictransport.Client)
	if !ok {
		t.Fatalf("transport %T", s.client.Transport)
	}
	if u := tr.URLs(); len(u) != 1 || u[0].String() != "https://abc123.eu-west-1.aws.found.io:443" {
		t.Fatalf("Cloud ID resolved to %v", u)
	}
}

// The official client refuses a server that does not say it is
// Elasticsearch (OpenSearch): New fails and says to use the opensearch
// sink.
func TestRefusesOpenSearch(t *testing.T) {
	f := newFakeES(t)
	f.product = ""
	_, err := New(t.Context(), testCfg(f), nil)
	if !errors.Is(err, errNotElasticsearch) || !processors.IsPermanent(err) || !strings.Contains(err.Error(), "opensearch sink") {
		t.Fatalf("New against a server that is not Elasticsearch: %v", err)
	}
}

// Where the cluster has ILM, the policy is installed (delete after the
// retention's days) and attached through the template, reading each
// index's age from its name; without ILM, mode lifecycle fails at start
// and mode auto falls back to the core API.
func TestRetentionILM(t *testing.T) {
	f := newFakeES(t)
	f.ilm = true
	cfg := testCfg(f)
	cfg.Retention = searchbulk.Retention{Days: 30}
	s, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	f.mu.Lock()
	policy, tmpl := string(f.policies["leasehold-events"]), string(f.templates["leasehold-events"])
	f.mu.Unlock()
	if !strings.Contains(policy, `"delete":{"min_age":"30d","actions":{"delete":{}}}`) {
		t.Errorf("ILM policy %s", policy)
	}
	var body struct {
		Template struct {
			Settings struct {
				Index struct {
					Lifecycle map[string]any `json:"lifecycle"`
				} `json:"index"`
			} `json:"settings"`
			Mappings struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
		IndexPatterns []string `json:"index_patterns"`
	}
	if err := json.Unmarshal([]byte(tmpl), &body); err != nil {
		t.Fatal(err)
	}
	lc := body.Template.Settings.Index.Lifecycle
	if lc["name"] != "leasehold-events" || lc["parse_origination_date"] != true {
		t.Errorf("template lifecycle settings %v", lc)
	}
	if body.Template.Mappings.Properties["properties"]["type"] != "flattened" || body.IndexPatterns[0] != "leasehold-events-*" {
		t.Errorf("template %s", tmpl)
	}

	f2 := newFakeES(t)
	cfg = testCfg(f2)
	cfg.Retention = searchbulk.Retention{Days: 30, Mode: searchbulk.RetentionLifecycle}
	if _, err := New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "no ILM") {
		t.Fatalf("mode lifecycle without ILM: %v", err)
	}
	cfg.Retention.Mode = searchbulk.RetentionAuto
	s2, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close(context.Background())
	if _, ok := f2.policies["leasehold-events"]; ok {
		t.Error("a policy was installed on a cluster without ILM")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want []string
	}{
		{"ok", Config{URL: "https://127.0.0.1:9200"}, nil},
		{"no url", Config{}, []string{"url: required"}},
		{"url and cloud id", Config{URL: "http://x", CloudID: "a:b"}, []string{"set one of them"}},
		{"credentials in url", Config{URL: "https://u:p@x"}, []string{"not in the URL"}},
		{"two kinds of auth", Config{URL: "http://x", APIKey: "k", Username: "u"}, []string{"api_key and username"}},
		{"bad index", Config{URL: "http://x", Index: "Events-{yyyy}"}, []string{"index:"}},
		{"flush bytes", Config{URL: "http://x", FlushBytes: 10 << 20}, []string{"flush_bytes"}},
		{"retention", Config{URL: "http://x", Retention: searchbulk.Retention{Days: -1, Mode: "ilm", Interval: time.Second}},
			[]string{"retention.days", "retention.mode", "retention.interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// Secrets never show: not in %v or %+v of the config, not in YAML
// written back from it.
func TestSecretsRedacted(t *testing.T) {
	c := Config{URL: "http://x", Username: "u", Password: "hunter2-pass", APIKey: config.Secret("c2VjcmV0LWtleQ==")}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), string(out)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "c2VjcmV0") {
			t.Fatalf("a secret shows: %s", s)
		}
	}
}
