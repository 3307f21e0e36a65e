package opensearch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/leasehold/leasehold/processors/searchbulk"
)

// ismCluster answers the ISM API as OpenSearch with the index-management
// plugin does: GET a policy (404 until it exists, then with its sequence
// number), PUT it (409 when it exists and if_seq_no is missing).
type ismCluster struct {
	mu     sync.Mutex
	has    bool // the plugin is installed
	policy string
	puts   []string // request URIs of PUT policy
}

func (c *ismCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case !strings.HasPrefix(r.URL.Path, "/_plugins/_ism/"):
		fmt.Fprint(w, `{"acknowledged":true}`) // the template
	case !c.has:
		w.WriteHeader(http.StatusBadRequest) // what OpenSearch 2.19 without the plugin answers (the local stack's)
		fmt.Fprint(w, `{"error":"no handler found for uri [/_plugins/_ism/policies] and method [GET]"}`)
	case r.URL.Path == "/_plugins/_ism/policies":
		fmt.Fprint(w, `{"policies":[],"total_policies":0}`)
	case r.Method == http.MethodGet:
		if c.policy == "" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"type":"status_exception","reason":"Policy not found"},"status":404}`)
			return
		}
		fmt.Fprint(w, `{"_id":"p","_seq_no":7,"_primary_term":2,"policy":`+c.policy+`}`)
	case r.Method == http.MethodPut:
		c.puts = append(c.puts, r.URL.RequestURI())
		if c.policy != "" && r.URL.Query().Get("if_seq_no") == "" {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":{"type":"version_conflict_engine_exception","reason":"document already exists"},"status":409}`)
			return
		}
		c.policy = string(body)
		fmt.Fprint(w, `{"_id":"p"}`)
	}
}

// With ISM, the policy is installed with an ism_template for the index
// pattern (a second sink updates it with its sequence number); without,
// mode lifecycle fails at start and mode auto does not install one.
func TestRetentionISM(t *testing.T) {
	c := &ismCluster{has: true}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg := Config{URL: srv.URL, Retention: searchbulk.Retention{Days: 14}}
	for range 2 {
		s, err := New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close(context.Background())
	}
	if len(c.puts) != 2 || !strings.Contains(c.puts[1], "if_seq_no=7&if_primary_term=2") {
		t.Fatalf("PUT policy requests %v", c.puts)
	}
	for _, want := range []string{`"min_index_age":"14d"`, `"delete":{}`, `"index_patterns":["leasehold-events-*"]`, `"priority":100`} {
		if !strings.Contains(c.policy, want) {
			t.Errorf("policy %s lacks %s", c.policy, want)
		}
	}

	none := &ismCluster{}
	srv2 := httptest.NewServer(none)
	defer srv2.Close()
	cfg = Config{URL: srv2.URL, Retention: searchbulk.Retention{Days: 14, Mode: searchbulk.RetentionLifecycle}}
	if _, err := New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "no ISM") {
		t.Fatalf("mode lifecycle without ISM: %v", err)
	}
	cfg.Retention.Mode = searchbulk.RetentionAuto
	s, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close(context.Background())
	if len(none.puts) != 0 {
		t.Errorf("a policy was put on a cluster without ISM: %v", none.puts)
	}
}
