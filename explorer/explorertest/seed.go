// Package explorertest fills an OpenSearch or Elasticsearch index with a generated workload
// for the explorer's tests, browser tests and benchmarks: the workload's
// CloudFront lines and app events go through the real parsers and
// enrichers (useragent, asset_id, asset_lookup with the workload's
// catalog, anonymize_ip) and are bulk-indexed with the sink's index
// template, one index per day as the sink names them.
//
// Geography comes from a real GeoIP city database when one is given (the
// local stack installs DB-IP's, and the workload's addresses come from the
// networks of the cities it claims); without one, from a stable hash of
// the address onto a list of cities. The API is tested on what the
// documents say, whatever filled them.
package explorertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/internal/dev/workload"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/assetlookup"
	"github.com/leasehold/leasehold/processors/transform"
)

// Places are the cities the hash spreads clients over, with weights.
var Places = []struct {
	ISO, Country, City string
	Weight             int
}{
	{"US", "United States", "New York", 14}, {"US", "United States", "San Francisco", 8}, {"GB", "United Kingdom", "London", 12},
	{"DE", "Germany", "Berlin", 9}, {"DE", "Germany", "Munich", 5}, {"FR", "France", "Paris", 7}, {"SE", "Sweden", "Stockholm", 5},
	{"JP", "Japan", "Tokyo", 6}, {"BR", "Brazil", "São Paulo", 5}, {"IN", "India", "Bengaluru", 6}, {"AU", "Australia", "Sydney", 4},
	{"CA", "Canada", "Toronto", 4}, {"NL", "Netherlands", "Amsterdam", 4}, {"SG", "Singapore", "Singapore", 3}, {"ES", "Spain", "Madrid", 3},
	{"", "", "", 5}, // unknown to the database
}

// Geo returns the place of a client address.
func Geo(ip string) event.Geo {
	h := fnv.New32a()
	h.Write([]byte(ip))
	total := 0
	for _, p := range Places {
		total += p.Weight
	}
	r := int(h.Sum32() % uint32(total))
	for _, p := range Places {
		if r < p.Weight {
			return event.Geo{CountryISO: p.ISO, Country: p.Country, City: p.City}
		}
		r -= p.Weight
	}
	return event.Geo{}
}

// Generate returns the workload's events, enriched as the demo's pipeline
// does, with geography from cityDB (a MaxMind-format file) or, when it is
// empty, from Geo. dir holds the catalog file it writes.
func Generate(ctx context.Context, wl *workload.Workload, dir, cityDB string) ([]event.Event, error) {
	var raw []event.Event
	_, err := wl.WriteLogs(func(string) (io.WriteCloser, error) { return &collect{out: &raw}, nil })
	if err != nil {
		return nil, err
	}
	var app bytes.Buffer
	if _, err := wl.WriteAppEvents(&app); err != nil {
		return nil, err
	}
	for _, line := range bytes.Split(bytes.TrimSpace(app.Bytes()), []byte("\n")) {
		e, err := appevent.Parse(line)
		if err != nil {
			return nil, err
		}
		raw = append(raw, e)
	}
	catPath := filepath.Join(dir, "catalog.ndjson")
	var cat bytes.Buffer
	if _, err := wl.WriteCatalog(&cat); err != nil {
		return nil, err
	}
	if err := os.WriteFile(catPath, cat.Bytes(), 0o644); err != nil {
		return nil, err
	}
	ua, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		return nil, err
	}
	ids, err := transform.NewAssetID(transform.AssetIDOptions{Pattern: `^/assets/(?P<asset>[^/]+)/`})
	if err != nil {
		return nil, err
	}
	lookup, err := assetlookup.New(ctx, assetlookup.Options{File: catPath}, nil, nil)
	if err != nil {
		return nil, err
	}
	defer lookup.Close()
	anon, err := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	if err != nil {
		return nil, err
	}
	chain := []processors.Processor{ua, ids, lookup}
	if cityDB != "" {
		geo, err := transform.NewGeoIP(transform.GeoIPOptions{CityDB: cityDB})
		if err != nil {
			return nil, err
		}
		defer geo.Close()
		chain = append(chain, geo)
	}
	chain = append(chain, anon)
	batch := make([]*processors.Message, len(raw))
	for i := range raw {
		if cityDB == "" {
			raw[i].Geo = Geo(raw[i].ClientIP)
		}
		batch[i] = &processors.Message{Event: raw[i], Parsed: true}
	}
	for _, p := range chain {
		if batch, err = p.Process(ctx, batch); err != nil {
			return nil, err
		}
	}
	out := make([]event.Event, len(batch))
	for i, m := range batch {
		out[i] = m.Event
	}
	return out, nil
}

type collect struct {
	bytes.Buffer
	out *[]event.Event
}

func (c *collect) Close() error {
	zr, err := gzip.NewReader(&c.Buffer)
	if err != nil {
		return err
	}
	r := cloudfront.NewReader(zr)
	for {
		e, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		*c.out = append(*c.out, e)
	}
}

// Index installs the sink's template for prefix-* (with b's mappings:
// the opensearch or the elasticsearch sink's) and bulk-indexes evs into
// prefix-YYYY.MM.DD by event time, with the event id as _id, then
// refreshes. It blocks until the cluster has answered every request.
func Index(ctx context.Context, b explorer.Backend, prefix string, evs []event.Event) error {
	tmpl, _ := json.Marshal(map[string]any{
		"index_patterns": []string{prefix + "-*"}, "priority": 200,
		"template": map[string]any{"mappings": b.Mappings(), "settings": map[string]any{"index": map[string]any{"number_of_shards": 1, "number_of_replicas": 0}}},
	})
	if err := do(ctx, b, http.MethodPut, "/_index_template/"+prefix, tmpl); err != nil {
		return err
	}
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		err := do(ctx, b, http.MethodPost, "/_bulk", buf.Bytes())
		buf.Reset()
		return err
	}
	for i := range evs {
		e := &evs[i]
		fmt.Fprintf(&buf, `{"index":{"_index":%q,"_id":%s}}`+"\n", prefix+"-"+e.EventTime.Format("2006.01.02"), event.AppendJSONString(nil, e.EventID))
		buf.Write(e.AppendJSON(nil))
		buf.WriteByte('\n')
		if buf.Len() > 4<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return do(ctx, b, http.MethodPost, "/"+prefix+"-*/_refresh", nil)
}

// Delete removes the indices and the template of prefix. The indices are
// deleted by name: Elasticsearch 8 refuses to delete by wildcard
// (action.destructive_requires_name).
func Delete(ctx context.Context, b explorer.Backend, prefix string) error {
	status, answer, err := b.Do(ctx, http.MethodGet, "/_cat/indices/"+prefix+"-*?format=json&h=index&expand_wildcards=all", nil)
	if err != nil {
		return fmt.Errorf("list %s-*: %w", prefix, err)
	}
	if status >= 300 {
		return fmt.Errorf("list %s-*: %d: %.300s", prefix, status, answer)
	}
	var rows []struct{ Index string }
	if err := json.Unmarshal(answer, &rows); err != nil {
		return fmt.Errorf("list %s-*: %w", prefix, err)
	}
	for len(rows) > 0 {
		n := min(len(rows), 50)
		names := make([]string, n)
		for i, r := range rows[:n] {
			names[i] = r.Index
		}
		if err := do(ctx, b, http.MethodDelete, "/"+strings.Join(names, ","), nil); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return do(ctx, b, http.MethodDelete, "/_index_template/"+prefix, nil)
}

func do(ctx context.Context, b explorer.Backend, method, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	status, answer, err := b.Do(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status >= 300 && status != http.StatusNotFound {
		return fmt.Errorf("%s %s: %d: %.300s", method, path, status, answer)
	}
	if strings.HasSuffix(path, "/_bulk") && bytes.Contains(answer[:min(len(answer), 64)], []byte(`"errors":true`)) {
		return fmt.Errorf("bulk: some documents failed: %.500s", answer)
	}
	return nil
}
