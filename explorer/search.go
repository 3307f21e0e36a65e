package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// store sends the explorer's requests to its Backend and decodes the
// answers. Search bodies are built by this package from typed values only.
type store struct {
	b   Backend
	raw string // index pattern of the events, e.g. leasehold-events-*
	log *zap.Logger
	// inflight shares a search with the callers that ask the very same
	// one (same indices, same body: same scope) while it runs, as the
	// page's top assets and highlights rank the assets at the same moment.
	inflight singleflight.Group
}

// ErrSearch is wrapped by errors from the data store (unreachable, or a
// non-2xx answer); the API maps it to 502 with a message that says what
// to check.
var ErrSearch = errors.New("explorer: search failed")

// searchParams: a missing index is an empty answer, not an error (a new
// deployment has no data); pre_filter_shard_size=1 makes a cheap "can
// match" round skip the indices whose event times (or rollup keys) cannot
// match, instead of running the aggregations on every shard.
const searchParams = "/_search?ignore_unavailable=true&allow_no_indices=true&request_cache=true&pre_filter_shard_size=1"

// search posts body to indices' _search (a comma-separated list of names
// and patterns) and decodes the answer. A search the same as one under
// way waits for that one's answer (which callers only read) instead.
func (s *store) search(ctx context.Context, indices string, body obj) (node, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	// The search runs on without the first caller's cancellation, which
	// the others do not share (the backend's own timeout still bounds it).
	ch := s.inflight.DoChan(indices+"\x00"+string(b), func() (any, error) {
		return s.searchNow(context.WithoutCancel(ctx), indices, b)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(node), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *store) searchNow(ctx context.Context, indices string, b []byte) (node, error) {
	t0 := time.Now()
	n, _, err := s.call(ctx, http.MethodPost, "/"+escapeIndices(indices)+searchParams, b)
	if err != nil {
		return nil, err
	}
	if ce := s.log.Check(zap.DebugLevel, "search"); ce != nil {
		ce.Write(zap.String("indices", indices), zap.String("took_ms", string(n["took"])), zap.Duration("round_trip", time.Since(t0)), zap.ByteString("body", b))
	}
	return n, nil
}

// call sends one request with a JSON body (nil for none; []byte as is)
// and decodes the JSON answer. A non-2xx answer is an error wrapping
// ErrSearch, with the start of the answer. It returns the body it sent.
func (s *store) call(ctx context.Context, method, path string, body any) (node, []byte, error) {
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, nil, err
		}
	}
	status, raw, err := s.b.Do(ctx, method, path, b)
	if err != nil {
		return nil, b, fmt.Errorf("%w: %v", ErrSearch, err)
	}
	if status >= 300 {
		return nil, b, &statusError{status: status, msg: firstBytes(raw, 300)}
	}
	var n node
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, b, fmt.Errorf("%w: decode answer: %v", ErrSearch, err)
		}
	}
	return n, b, nil
}

// statusError is a non-2xx answer of the data store.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%v: %d %s: %s", ErrSearch, e.status, http.StatusText(e.status), e.msg)
}

func (e *statusError) Unwrap() error { return ErrSearch }

// isStatus reports whether err is an answer with the given status.
func isStatus(err error, status int) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == status
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// escapeIndices escapes each name of a comma-separated index list.
func escapeIndices(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, ",")
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
// exactCount reports whether a terms bucket's count is its key's whole
// count: no shard may have left the key out of its top list (the bucket's
// doc_count_error_upper_bound, asked with show_term_doc_count_error, is 0).
func (n node) exactCount() bool { return n.num("doc_count_error_upper_bound") == 0 }

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

// matchNone matches no document.
func matchNone() obj { return obj{"match_none": obj{}} }

func boolFilter(filters ...obj) obj { return obj{"bool": obj{"filter": filters}} }
func not(f obj) obj                 { return obj{"bool": obj{"must_not": []obj{f}}} }
func filterAgg(f obj, sub obj) obj {
	a := obj{"filter": f}
	if sub != nil {
		a["aggs"] = sub
	}
	return a
}
