package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// osClient runs the few OpenSearch queries the demo's summary needs over
// plain HTTP (the sink uses opensearch-go; a handful of GETs here do not).
type osClient struct {
	base  string
	index string // pattern, e.g. leasehold-demo-*
	http  *http.Client
}

func (c osClient) do(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opensearch %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("opensearch %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return v, errNoIndex
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("opensearch %s %s: %s: %v", method, path, resp.Status, v["error"])
	}
	return v, nil
}

var errNoIndex = fmt.Errorf("demo: no index yet")

// count returns the number of documents (after a refresh).
func (c osClient) count(ctx context.Context) (int, error) {
	if _, err := c.do(ctx, http.MethodPost, "/"+c.index+"/_refresh", nil); err != nil {
		if err == errNoIndex {
			return 0, nil
		}
		return 0, err
	}
	v, err := c.do(ctx, http.MethodGet, "/"+c.index+"/_count", nil)
	if err != nil {
		return 0, err
	}
	n, _ := v["count"].(float64)
	return int(n), nil
}

// deleteIndices removes the demo's indices (no error if there are none).
func (c osClient) deleteIndices(ctx context.Context) error {
	if _, err := c.do(ctx, http.MethodDelete, "/"+c.index, nil); err != nil && err != errNoIndex {
		return err
	}
	return nil
}

type bucket struct {
	Key   string
	Count int
	Sub   map[string]int // optional sub-aggregation buckets
}

// terms runs a terms aggregation on field, optionally within a time range
// and a query, with an optional sub-terms aggregation.
func (c osClient) terms(ctx context.Context, field string, size int, from, to time.Time, filter map[string]any, sub string) ([]bucket, error) {
	var must []any
	if !from.IsZero() {
		must = append(must, map[string]any{"range": map[string]any{"event_time": map[string]any{"gte": from.Format(time.RFC3339), "lt": to.Format(time.RFC3339)}}})
	}
	if filter != nil {
		must = append(must, filter)
	}
	agg := map[string]any{"terms": map[string]any{"field": field, "size": size}}
	if sub != "" {
		agg["aggs"] = map[string]any{"sub": map[string]any{"terms": map[string]any{"field": sub, "size": 10}}}
	}
	q := map[string]any{"size": 0, "query": map[string]any{"bool": map[string]any{"must": must}}, "aggs": map[string]any{"t": agg}}
	v, err := c.do(ctx, http.MethodPost, "/"+c.index+"/_search", q)
	if err != nil {
		return nil, err
	}
	aggs, _ := v["aggregations"].(map[string]any)
	t, _ := aggs["t"].(map[string]any)
	raw, _ := t["buckets"].([]any)
	var out []bucket
	for _, r := range raw {
		m, _ := r.(map[string]any)
		b := bucket{Key: fmt.Sprint(m["key"]), Count: int(m["doc_count"].(float64))}
		if s, ok := m["sub"].(map[string]any); ok {
			b.Sub = map[string]int{}
			for _, sr := range s["buckets"].([]any) {
				sm := sr.(map[string]any)
				b.Sub[fmt.Sprint(sm["key"])] = int(sm["doc_count"].(float64))
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// report prints the marketing answers: top assets this week vs last week,
// top referring sites, countries, event types by source.
func (c osClient) report(ctx context.Context, w io.Writer, weekEnd time.Time, geoCredit string) error {
	thisFrom, lastFrom := weekEnd.AddDate(0, 0, -7), weekEnd.AddDate(0, 0, -14)
	human := map[string]any{"term": map[string]any{"bot": false}}
	thisWeek, err := c.terms(ctx, "asset_id", 10, thisFrom, weekEnd, human, "asset.title")
	if err != nil {
		return err
	}
	last, err := c.terms(ctx, "asset_id", 1000, lastFrom, thisFrom, human, "")
	if err != nil {
		return err
	}
	lastBy := map[string]int{}
	lastRank := map[string]int{}
	for i, b := range last {
		lastBy[b.Key] = b.Count
		lastRank[b.Key] = i + 1
	}
	fmt.Fprintf(w, "\nTop assets, week of %s vs the week before (people only, bots excluded):\n\n", thisFrom.Format("Jan 2"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tasset\ttitle (from the catalog)\tthis week\tweek before\tchange\tlast week's rank")
	for i, b := range thisWeek {
		prev := lastBy[b.Key]
		change := "new"
		if prev > 0 {
			change = fmt.Sprintf("%+.0f%%", (float64(b.Count)/float64(prev)-1)*100)
		}
		rank := "-"
		if r, ok := lastRank[b.Key]; ok {
			rank = fmt.Sprint(r)
		}
		title := "(not in the catalog)"
		for t := range b.Sub {
			title = t
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%s\t%s\n", i+1, b.Key, title, b.Count, prev, change, rank)
	}
	tw.Flush()

	refs, err := c.terms(ctx, "referring_domain", 8, thisFrom, weekEnd, nil, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTop referring sites this week:\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, b := range refs {
		fmt.Fprintf(tw, "  %s\t%d\n", b.Key, b.Count)
	}
	tw.Flush()

	countries, err := c.terms(ctx, "geo.country_iso", 10, thisFrom, weekEnd, nil, "geo.city")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nCountries this week, with their top cities:\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, b := range countries {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", b.Key, countryName(b.Key), b.Count, topSub(b.Sub, 4))
	}
	tw.Flush()
	if len(countries) == 0 {
		fmt.Fprintf(w, "  (none: the demo ran without a GeoIP database)\n")
	} else if geoCredit != "" {
		fmt.Fprintf(w, "  Source: %s\n", geoCredit)
	}

	types, err := c.terms(ctx, "source", 5, time.Time{}, time.Time{}, nil, "event_type")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nEvents by source and type (both weeks):\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, b := range types {
		var parts []string
		for t, n := range b.Sub {
			parts = append(parts, fmt.Sprintf("%s %d", t, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", b.Key, b.Count, strings.Join(parts, ", "))
	}
	tw.Flush()
	return nil
}

// countryName is the English name of an ISO 3166-1 alpha-2 code, or "".
func countryName(iso string) string {
	r, err := language.ParseRegion(iso)
	if err != nil || !r.IsCountry() {
		return ""
	}
	return display.English.Regions().Name(r)
}

// topSub formats the n largest sub-buckets as "Berlin 812, Munich 405",
// largest first (ties by name).
func topSub(sub map[string]int, n int) string {
	keys := make([]string, 0, len(sub))
	for k := range sub {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if sub[keys[i]] != sub[keys[j]] {
			return sub[keys[i]] > sub[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %d", k, sub[k]))
	}
	return strings.Join(parts, ", ")
}
