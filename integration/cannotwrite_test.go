package integration

// The OpenSearch sink against a real OpenSearch that refuses writes until
// an operator acts. Each case provokes the condition on the local
// cluster, checks that the sink holds the documents (nothing
// dead-lettered, Durable stays, the pipeline is not ready), fixes the
// cluster the way an operator would, and checks that every document is
// then indexed. The cases change cluster-wide settings, so this test must
// not run in parallel with other OpenSearch tests (it does not call
// t.Parallel, and the parallel chaos tests start after it).

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/opensearch"
)

// osOpenShards returns the shards the cluster counts against
// cluster.max_shards_per_node: primaries and replicas of open indices.
func osOpenShards(t *testing.T, base string) int {
	t.Helper()
	var rows []struct {
		Pri    string `json:"pri"`
		Rep    string `json:"rep"`
		Status string `json:"status"`
	}
	osHTTP(t, http.MethodGet, base+"/_cat/indices?format=json&h=pri,rep,status&expand_wildcards=all", "", &rows)
	n := 0
	for _, r := range rows {
		var pri, rep int
		fmt.Sscan(r.Pri, &pri)
		fmt.Sscan(r.Rep, &rep)
		if r.Status == "open" {
			n += pri * (1 + rep)
		}
	}
	return n
}

// osSetting sets a persistent cluster setting (nil resets it). It works
// in a Cleanup too, where the test's context has ended.
func osSetting(t *testing.T, base, key string, value any) {
	t.Helper()
	v := "null"
	if value != nil {
		v = fmt.Sprintf("%q", fmt.Sprint(value))
	}
	ctx, cancel := cleanupContext(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/_cluster/settings", strings.NewReader(fmt.Sprintf(`{"persistent":{%q:%s}}`, key, v)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set %s: %s", key, resp.Status)
	}
}

func TestOpenSearchSinkCannotWrite(t *testing.T) {
	e := testenv.Require(t, "opensearch")
	base := e.OpenSearch
	day := osDay0.UTC().Format("2006.01.02") // osEvents(…, 0, 50) all fall on this day

	cases := []struct {
		name    string
		breakIt func(t *testing.T, index string)
		fixIt   func(t *testing.T, index string)
		want    string // in the error the sink reports
	}{
		{
			name: "cluster at its shard limit",
			breakIt: func(t *testing.T, index string) {
				osHTTP(t, http.MethodPut, base+"/"+index+"-pad", `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`, nil)
				osSetting(t, base, "cluster.max_shards_per_node", osOpenShards(t, base))
				t.Cleanup(func() { osSetting(t, base, "cluster.max_shards_per_node", nil) })
			},
			fixIt: func(t *testing.T, index string) { osSetting(t, base, "cluster.max_shards_per_node", nil) },
			want:  "maximum shards open",
		},
		{
			name: "missing index with auto-create off",
			breakIt: func(t *testing.T, index string) {
				prefix := strings.TrimSuffix(index, "-"+day)
				osSetting(t, base, "action.auto_create_index", "-"+prefix+"*,+*")
				t.Cleanup(func() { osSetting(t, base, "action.auto_create_index", nil) })
			},
			fixIt: func(t *testing.T, index string) { osSetting(t, base, "action.auto_create_index", nil) },
			want:  "index_not_found_exception",
		},
		{
			name: "closed index",
			breakIt: func(t *testing.T, index string) {
				osHTTP(t, http.MethodPut, base+"/"+index, "", nil)
				osHTTP(t, http.MethodPost, base+"/"+index+"/_close", "", nil)
			},
			fixIt: func(t *testing.T, index string) { osHTTP(t, http.MethodPost, base+"/"+index+"/_open", "", nil) },
			want:  "index_closed_exception",
		},
		{
			name: "read-only index",
			breakIt: func(t *testing.T, index string) {
				osHTTP(t, http.MethodPut, base+"/"+index, "", nil)
				osHTTP(t, http.MethodPut, base+"/"+index+"/_settings", `{"index.blocks.read_only":true}`, nil)
			},
			fixIt: func(t *testing.T, index string) {
				osHTTP(t, http.MethodPut, base+"/"+index+"/_settings", `{"index.blocks.read_only":null}`, nil)
			},
			want: "cluster_block_exception",
		},
		{
			name: "alias without a write index",
			breakIt: func(t *testing.T, index string) {
				for _, s := range []string{"a", "b"} {
					osHTTP(t, http.MethodPut, base+"/"+index+"-"+s, "", nil)
				}
				osHTTP(t, http.MethodPost, base+"/_aliases", fmt.Sprintf(`{"actions":[{"add":{"index":%q,"alias":%q}},{"add":{"index":%q,"alias":%q}}]}`,
					index+"-a", index, index+"-b", index), nil)
			},
			fixIt: func(t *testing.T, index string) {
				osHTTP(t, http.MethodPost, base+"/_aliases", fmt.Sprintf(`{"actions":[{"add":{"index":%q,"alias":%q,"is_write_index":true}}]}`, index+"-a", index), nil)
			},
			want: "no write index is defined",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testenv.Name(t, "lhcw")
			index := prefix + "-" + day
			s := osNewSink(t, base, prefix, func(c *opensearch.Config) {
				c.FlushInterval = 50 * time.Millisecond
				c.BackoffMax = 500 * time.Millisecond
			})
			dl := &osDL{}
			p, err := processors.NewPipeline(nil, []processors.Sink{s}, dl, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, index)
			ss := osOpen(t, s, dl)
			msgs := osEvents("cw", 0, 50)
			if err := ss.Write(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for s.State().CannotWriteErrors < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("the sink never reported that it cannot write: %+v; dead letters %d", s.State(), len(dl.got()))
				}
				time.Sleep(20 * time.Millisecond)
			}
			st := s.State()
			if st.CannotWrite != 1 || !strings.Contains(st.LastError, tc.want) {
				t.Errorf("state %+v, want one shard that cannot write with %q", st, tc.want)
			}
			if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "cannot write") {
				t.Errorf("pipeline readiness %v, want not ready", err)
			}
			if got := dl.got(); len(got) != 0 {
				t.Fatalf("%d documents dead-lettered while the cluster refused writes: %v", len(got), got[0].Failed().Err)
			}
			if !ss.Durable().IsZero() {
				t.Fatalf("Durable %v before anything was indexed", ss.Durable())
			}
			t.Logf("refused as expected: %s", st.LastError)

			tc.fixIt(t, index)
			if err := ss.Flush(testenv.Context(t, 60*time.Second)); err != nil {
				t.Fatalf("flush after the fix: %v", err)
			}
			if docs, distinct := osCount(t, base, index); docs != len(msgs) || distinct != len(msgs) {
				t.Fatalf("%d documents (%d distinct) in %s, want %d", docs, distinct, index, len(msgs))
			}
			if ss.Durable() != msgs[len(msgs)-1].Position() || len(dl.got()) != 0 {
				t.Fatalf("Durable %v, %d dead letters", ss.Durable(), len(dl.got()))
			}
			if err := p.Ready(); err != nil {
				t.Errorf("still not ready after the fix: %v", err)
			}
		})
	}
	if t.Failed() {
		return
	}
	// A document that really is bad is still dead-lettered.
	t.Run("a bad document is still dead-lettered", func(t *testing.T) {
		prefix := testenv.Name(t, "lhcw")
		s := osNewSink(t, base, prefix, func(c *opensearch.Config) { c.FlushInterval = 50 * time.Millisecond })
		dl := &osDL{}
		ss := osOpen(t, s, dl)
		msgs := osEvents("bad", 0, 3)
		msgs[1].Event.ClientIP = "not an address" // the template maps client_ip as ip
		if err := ss.Write(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
		if err := ss.Flush(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		got := dl.got()
		var ie *opensearch.ItemError
		if len(got) != 1 || !errors.As(got[0].Failed().Err, &ie) || ie.Type != "mapper_parsing_exception" {
			t.Fatalf("dead letters %v, want the one bad document", got)
		}
	})
}
