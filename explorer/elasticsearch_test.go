package explorer_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// TestNewElasticsearchNamesTheKey: every mistake in the connection
// options is an error at start-up naming the explore key, never showing
// a secret.
func TestNewElasticsearchNamesTheKey(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cret-pl4nted"
	for _, tc := range []struct {
		name string
		o    explorer.ElasticsearchOptions
		want string
	}{
		{"no address", explorer.ElasticsearchOptions{}, "explore.elasticsearch_url: required"},
		{"url and cloud id", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "https://x:9200"}, CloudID: "a:b"}, "explore.elasticsearch_url and explore.elasticsearch_cloud_id"},
		{"not a url", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "x:9200"}}, "explore.elasticsearch_url: \"x:9200\""},
		{"two kinds of auth", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "https://x:9200", Username: "u", APIKey: secret}}, "explore.elasticsearch_api_key and explore.elasticsearch_username"},
		{"password alone", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "https://x:9200", Password: secret}}, "explore.elasticsearch_password: set without"},
		{"missing ca file", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "https://x:9200", CAFile: "/nonexistent/ca.pem"}}, "explore.elasticsearch_ca_file: open /nonexistent/ca.pem"},
		{"ca file without a certificate", explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: "https://x:9200", CAFile: notPEM}}, "explore.elasticsearch_ca_file: " + notPEM + " holds no PEM certificate"},
		{"bad cloud id", explorer.ElasticsearchOptions{CloudID: "deployment:%%%"}, "explore.elasticsearch_cloud_id:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := explorer.NewElasticsearch(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
				t.Fatalf("error %v, want it to contain %q and no secret", err, tc.want)
			}
		})
	}
}

// TestElasticsearchBackendAuthenticates checks what the backend sends a
// server that answers as Elasticsearch does (the local cluster cannot
// make API keys: its security index needs a module the integ-test zip
// lacks): the API key or basic auth on every request, JSON and NDJSON
// bodies, and the status and body of the answer as they came.
func TestElasticsearchBackendAuthenticates(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		conn searchbulk.Conn
		auth string
	}{
		{"api key", searchbulk.Conn{URL: srv.URL, APIKey: config.Secret("aWQ6a2V5")}, "APIKey aWQ6a2V5"}, // the official client's spelling,
		{"basic", searchbulk.Conn{URL: srv.URL + "/", Username: "reader", Password: "pw"}, "Basic cmVhZGVyOnB3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			b, err := explorer.NewElasticsearch(explorer.ElasticsearchOptions{Conn: tc.conn})
			if err != nil {
				t.Fatal(err)
			}
			status, answer, err := b.Do(context.Background(), http.MethodPost, "/idx-*/_search?ignore_unavailable=true", []byte(`{}`))
			if err != nil || status != http.StatusCreated || string(answer) != `{"ok":true}` {
				t.Fatalf("search: %d %s %v", status, answer, err)
			}
			if _, _, err := b.Do(context.Background(), http.MethodPost, "/_bulk", []byte("{}\n")); err != nil {
				t.Fatal(err)
			}
			want := []string{"POST /idx-*/_search?ignore_unavailable=true " + tc.auth + " application/json", "POST /_bulk " + tc.auth + " application/x-ndjson"}
			if strings.Join(seen, "\n") != strings.Join(want, "\n") {
				t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestElasticsearchBackendRefusesOtherServers: explore.backend
// elasticsearch pointed at the local OpenSearch (a plausible mistake: the
// two share their API) fails every call with an error that says so, and
// the page gets its "data store not answering" error, not empty figures;
// and the local Elasticsearch's certificate is not trusted without its CA.
func TestElasticsearchBackendRefusesOtherServers(t *testing.T) {
	e := testenv.Require(t, "opensearch", "elasticsearch")
	b, err := explorer.NewElasticsearch(explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: e.OpenSearch}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Do(context.Background(), http.MethodGet, "/", nil); err == nil || !strings.Contains(err.Error(), "is not Elasticsearch") {
		t.Fatalf("OpenSearch as Elasticsearch: %v", err)
	}
	users, _ := explorer.NewUsers([]explorer.User{{Name: "admin", TokenSHA256: explorer.HashToken(tokens["admin"]), Admin: true}})
	srv, err := explorer.New(explorer.Config{Backend: b, Index: "explorer-nothing-here-*", Now: func() time.Time { return now }}, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	if code, body := raw(t, ts, "admin", "/api/summary"); code != http.StatusBadGateway || !strings.Contains(string(body), "search_unavailable") {
		t.Fatalf("summary from OpenSearch as Elasticsearch: %d %s", code, body)
	}

	noCA, err := explorer.NewElasticsearch(explorer.ElasticsearchOptions{Conn: searchbulk.Conn{URL: e.Elasticsearch, Username: e.ES.Username, Password: config.Secret(e.ES.Password)}})
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, _, err := noCA.Do(context.Background(), http.MethodGet, "/", nil); !errors.As(err, &unknown) {
		t.Fatalf("the local Elasticsearch without its CA: %v, want an unknown authority", err)
	}
}
