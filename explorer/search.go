package explorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// searcher sends search requests to OpenSearch (or Elasticsearch) over
// HTTP. The bodies are built by this package from typed values only.
type searcher struct {
	base     string // e.g. http://127.0.0.1:9200
	index    string // pattern, e.g. leasehold-events-*
	user     string
	password string
	http     *http.Client
	log      *zap.Logger
}

// ErrSearch is wrapped by errors from OpenSearch (unreachable, or a non-2xx
// answer); the API maps it to 502 with a message that says what to check.
var ErrSearch = errors.New("explorer: search failed")

// search posts body to <index>/_search and decodes the answer. A missing
// index is an empty answer, not an error: a new deployment has no data.
func (s *searcher) search(ctx context.Context, body any) (node, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	// pre_filter_shard_size=1: a cheap "can match" round first skips the
	// daily indices whose event times cannot match the range, instead of
	// running the aggregations on every day's shard.
	u := s.base + "/" + url.PathEscape(s.index) + "/_search?ignore_unavailable=true&allow_no_indices=true&request_cache=true&pre_filter_shard_size=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	t0 := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSearch, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: read answer: %v", ErrSearch, err)
	}
	if resp.StatusCode >= 300 {
		msg := string(raw)
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrSearch, resp.Status, msg)
	}
	var n node
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("%w: decode answer: %v", ErrSearch, err)
	}
	if ce := s.log.Check(zap.DebugLevel, "search"); ce != nil {
		ce.Write(zap.String("took_ms", string(n["took"])), zap.Duration("round_trip", time.Since(t0)), zap.ByteString("body", b))
	}
	return n, nil
}

// node is one JSON object of a search answer, decoded lazily.
type node map[string]json.RawMessage

func (n node) sub(name string) node {
	var out node
	if raw, ok := n[name]; ok {
		_ = json.Unmarshal(raw, &out)
	}
	return out
}

// agg returns aggregations.<name> of a search answer.
func (n node) agg(name string) node { return n.sub("aggregations").sub(name) }

func (n node) num(name string) float64 {
	var v *float64
	if raw, ok := n[name]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	if v == nil {
		return 0
	}
	return *v
}

func (n node) str(name string) string {
	var v any
	if raw, ok := n[name]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// count is doc_count.
func (n node) count() int64 { return int64(n.num("doc_count")) }

// value is a metric's value (cardinality, sum, min, max).
func (n node) value() float64 { return n.num("value") }

// key is a bucket's key as text.
func (n node) key() string { return n.str("key") }

// time is a min/max metric's value as a time (zero when absent).
func (n node) time() time.Time {
	if _, ok := n["value"]; !ok || string(n["value"]) == "null" {
		return time.Time{}
	}
	return time.UnixMilli(int64(n.value())).UTC()
}

// buckets returns a bucket aggregation's buckets in order.
func (n node) buckets() []node {
	var out []node
	_ = json.Unmarshal(n["buckets"], &out)
	return out
}

// keyed returns a filters aggregation's buckets by name.
func (n node) keyed() map[string]node {
	out := map[string]node{}
	_ = json.Unmarshal(n["buckets"], &out)
	return out
}

// hits returns hits.hits[]._source of a search answer.
func (n node) hits() []node {
	var out []node
	for _, h := range n.sub("hits").arr("hits") {
		out = append(out, h.sub("_source"))
	}
	return out
}

func (n node) arr(name string) []node {
	var out []node
	_ = json.Unmarshal(n[name], &out)
	return out
}

// source returns a top_hits aggregation's first document.
func (n node) source() node {
	if h := n.hits(); len(h) > 0 {
		return h[0]
	}
	return nil
}

// path follows dotted field names into a _source document.
func (n node) path(p string) string {
	cur := n
	parts := strings.Split(p, ".")
	for _, f := range parts[:len(parts)-1] {
		cur = cur.sub(f)
	}
	return cur.str(parts[len(parts)-1])
}

// Query DSL helpers: every value is a Go value placed in a JSON structure,
// never text parsed by OpenSearch as a query language.
type obj = map[string]any

func term(field string, v any) obj       { return obj{"term": obj{field: v}} }
func terms(field string, v []string) obj { return obj{"terms": obj{field: v}} }
func timeRange(from, to time.Time) obj {
	return obj{"range": obj{"event_time": obj{"gte": from.Format(time.RFC3339), "lt": to.Format(time.RFC3339)}}}
}
func boolFilter(filters ...obj) obj { return obj{"bool": obj{"filter": filters}} }
func not(f obj) obj                 { return obj{"bool": obj{"must_not": []obj{f}}} }
func filterAgg(f obj, sub obj) obj {
	a := obj{"filter": f}
	if sub != nil {
		a["aggs"] = sub
	}
	return a
}
