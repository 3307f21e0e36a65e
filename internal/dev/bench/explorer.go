package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/explorer/explorertest"
	"github.com/leasehold/leasehold/internal/dev/workload"
)

// ExplorerConfig sizes the explorer benchmark.
type ExplorerConfig struct {
	// Store is the cluster, OpenSearch or Elasticsearch, through the
	// explorer's own Backend: the bench reads, generates and clears
	// caches through it as the explorer reads.
	Store    explorer.Backend
	Index    string    // index pattern to read, e.g. leasehold-demo-*; default Prefix-*
	Prefix   string    // index prefix of generated documents; default leasehold-bench-explorer
	Generate int       // documents to generate into Prefix first (0: measure what is there)
	Days     int       // days the generated documents spread over, ending yesterday; default 90
	Rounds   int       // page loads measured with a cold request cache; default 20
	Warm     int       // page loads measured after them with the cluster's request cache kept; default Rounds
	Tenant   string    // the customer of the customer rounds; default the busiest
	Now      time.Time // default time.Now
	// EventsOnly measures the explorer without rollups; otherwise the
	// rollups of every finished day are built first (timed) into
	// RollupPrefix (default leasehold-rollups) and read.
	EventsOnly   bool
	RollupPrefix string
	Progress     io.Writer
	// SearchLog, when set, receives the explorer's debug log of the
	// measured page views: one JSON line per search with the indices, the
	// cluster's took and the body, to see which searches are slow.
	SearchLog io.Writer
}

// ExplorerResult holds the measurements.
type ExplorerResult struct {
	Docs      int64
	StoreSize string
	Generated int
	GenTime   time.Duration
	Rounds    int
	Page      []time.Duration            // all API calls of one page view, issued together as the page does
	Calls     map[string][]time.Duration // per API call
	Warm      *ExplorerResult            // the same with the request cache kept between page views
	Failed    map[string]int             // calls that failed (timeouts, 502), by call; not in the times
	// The rollups (unless EventsOnly): the pass that built them, and
	// their size.
	Rollups     bool
	RollupBuild time.Duration
	RollupStats explorer.BuildStats
	RollupDocs  int64
	RollupStore string
}

// pageCalls are the calls the overview page makes, at once.
var pageCalls = []string{"summary", "highlights", "assets?limit=10", "sources?limit=25", "places?limit=25", "tech"}

// RunExplorer optionally generates documents, then serves the explorer's
// API in-process on 127.0.0.1 and measures page views: each round clears
// OpenSearch's request cache (so every figure is computed, not replayed),
// then issues the page's calls concurrently, alternating between an admin
// (all customers) and one customer, and the periods 7, 30 and 90 days.
func RunExplorer(ctx context.Context, cfg ExplorerConfig) (ExplorerResult, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "leasehold-bench-explorer"
	}
	if cfg.Index == "" {
		cfg.Index = cfg.Prefix + "-*"
	}
	if cfg.Days == 0 {
		cfg.Days = 90
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 20
	}
	if cfg.Warm == 0 {
		cfg.Warm = cfg.Rounds
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.RollupPrefix == "" {
		cfg.RollupPrefix = "leasehold-rollups"
	}
	res := ExplorerResult{Calls: map[string][]time.Duration{}, Rollups: !cfg.EventsOnly}
	hc := &http.Client{Timeout: 5 * time.Minute}
	if cfg.Generate > 0 {
		start := time.Now()
		if err := generate(ctx, cfg); err != nil {
			return res, err
		}
		res.Generated, res.GenTime = cfg.Generate, time.Since(start)
	}
	stats, err := call(ctx, cfg.Store, http.MethodGet, "/"+cfg.Index+"/_stats/docs,store", nil)
	if err != nil {
		return res, err
	}
	var st struct {
		All struct {
			Primaries struct {
				Docs  struct{ Count int64 } `json:"docs"`
				Store struct {
					SizeInBytes int64 `json:"size_in_bytes"`
				} `json:"store"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	_ = json.Unmarshal(stats, &st)
	res.Docs = st.All.Primaries.Docs.Count
	res.StoreSize = fmt.Sprintf("%.2f GB", float64(st.All.Primaries.Store.SizeInBytes)/1e9)
	if cfg.Tenant == "" {
		b, err := call(ctx, cfg.Store, http.MethodPost, "/"+cfg.Index+"/_search", []byte(`{"size":0,"aggs":{"t":{"terms":{"field":"tenant","size":1}}}}`))
		if err != nil {
			return res, err
		}
		var r struct {
			Aggregations struct {
				T struct{ Buckets []struct{ Key string } } `json:"t"`
			} `json:"aggregations"`
		}
		_ = json.Unmarshal(b, &r)
		if len(r.Aggregations.T.Buckets) == 0 {
			return res, fmt.Errorf("no documents with a tenant in %s", cfg.Index)
		}
		cfg.Tenant = r.Aggregations.T.Buckets[0].Key
	}
	users, err := explorer.NewUsers([]explorer.User{
		{Name: "admin", TokenSHA256: explorer.HashToken("bench-admin"), Admin: true},
		{Name: "customer", TokenSHA256: explorer.HashToken("bench-customer"), Tenant: cfg.Tenant},
	})
	if err != nil {
		return res, err
	}
	mode := explorer.RollupsRead
	if cfg.EventsOnly {
		mode = explorer.RollupsOff
	} else {
		// Build (or bring up to date) the rollups of every finished day,
		// as the explorer does in the background.
		b, err := explorer.New(explorer.Config{Backend: cfg.Store, Index: cfg.Index, Rollups: explorer.RollupsBuild,
			RollupPrefix: cfg.RollupPrefix, Now: func() time.Time { return cfg.Now }}, users, nil)
		if err != nil {
			return res, err
		}
		fmt.Fprintln(cfg.Progress, "building rollups")
		start := time.Now()
		if res.RollupStats, err = b.BuildRollups(ctx); err != nil {
			return res, err
		}
		res.RollupBuild = time.Since(start)
		fmt.Fprintf(cfg.Progress, "rollups: %+v in %s\n", res.RollupStats, res.RollupBuild.Round(time.Second))
		if b, err := call(ctx, cfg.Store, http.MethodGet, "/"+cfg.RollupPrefix+"-d-*/_stats/docs,store", nil); err == nil {
			var st struct {
				All struct {
					Primaries struct {
						Docs  struct{ Count int64 } `json:"docs"`
						Store struct {
							SizeInBytes int64 `json:"size_in_bytes"`
						} `json:"store"`
					} `json:"primaries"`
				} `json:"_all"`
			}
			_ = json.Unmarshal(b, &st)
			res.RollupDocs = st.All.Primaries.Docs.Count
			res.RollupStore = fmt.Sprintf("%.2f GB", float64(st.All.Primaries.Store.SizeInBytes)/1e9)
		}
	}
	var log *zap.Logger
	if cfg.SearchLog != nil {
		enc := zap.NewProductionEncoderConfig()
		enc.EncodeTime = zapcore.ISO8601TimeEncoder
		log = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(cfg.SearchLog), zap.DebugLevel))
	}
	srv, err := explorer.New(explorer.Config{Backend: cfg.Store, Index: cfg.Index, AppDomains: []string{"app.example.com"}, Now: func() time.Time { return cfg.Now },
		Rollups: mode, RollupPrefix: cfg.RollupPrefix, RollupCheck: 5 * time.Second}, users, log)
	if err != nil {
		return res, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, l) }()
	defer func() { stop(); <-served }()
	base := "http://" + l.Addr().String()
	cold, err := measure(ctx, hc, cfg, base, cfg.Rounds, true, log)
	if err != nil {
		return res, err
	}
	warm, err := measure(ctx, hc, cfg, base, cfg.Warm, false, log)
	if err != nil {
		return res, err
	}
	res.Rounds, res.Page, res.Calls = cold.Rounds, cold.Page, cold.Calls
	res.Warm = &warm
	return res, nil
}

// measure runs page views; clear empties the cluster's request cache before
// each, so that every figure is computed rather than replayed.
// With a search log, each view ends with a line "page view" there.
func measure(ctx context.Context, hc *http.Client, cfg ExplorerConfig, base string, rounds int, clear bool, log *zap.Logger) (ExplorerResult, error) {
	if log == nil {
		log = zap.NewNop()
	}
	res := ExplorerResult{Calls: map[string][]time.Duration{}, Rounds: rounds, Failed: map[string]int{}}
	periods := []string{"7d", "30d", "90d"}
	var mu sync.Mutex
	for i := range rounds {
		if clear {
			if _, err := call(ctx, cfg.Store, http.MethodPost, "/"+cfg.Index+","+cfg.RollupPrefix+"-d-*/_cache/clear?request=true&ignore_unavailable=true&allow_no_indices=true", nil); err != nil {
				return res, err
			}
		}
		token := "bench-admin"
		if i%2 == 1 {
			token = "bench-customer"
		}
		period := periods[(i/2)%len(periods)]
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for _, call := range pageCalls {
			g.Go(func() error {
				path, q, _ := strings.Cut(call, "?")
				u := base + "/api/" + path + "?period=" + period
				if q != "" {
					u += "&" + q
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(gctx, http.MethodGet, u, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					// A slow store answers 502/504: count it and go on.
					mu.Lock()
					res.Failed[path]++
					mu.Unlock()
					fmt.Fprintf(cfg.Progress, "%s: %s after %s\n", u, resp.Status, time.Since(t0).Round(time.Millisecond))
					return nil
				}
				mu.Lock()
				res.Calls[path] = append(res.Calls[path], time.Since(t0))
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return res, err
		}
		res.Page = append(res.Page, time.Since(start))
		log.Debug("page view", zap.Bool("cold", clear), zap.Int("round", i+1), zap.Bool("admin", i%2 == 0), zap.String("period", period),
			zap.Duration("took", time.Since(start)))
		fmt.Fprintf(cfg.Progress, "%s round %d/%d (%s, %s): page %s\n", map[bool]string{true: "cold", false: "warm"}[clear], i+1, rounds,
			map[bool]string{true: "customer", false: "admin"}[i%2 == 1], period, time.Since(start).Round(time.Millisecond))
	}
	return res, nil
}

// quantile returns the q-quantile (nearest rank) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// PrintExplorer writes the result as a Markdown table.
func PrintExplorer(w io.Writer, r ExplorerResult) {
	if r.Generated > 0 {
		fmt.Fprintf(w, "Generated %d documents in %s (%.0f documents/s).\n\n", r.Generated, r.GenTime.Round(time.Second), float64(r.Generated)/r.GenTime.Seconds())
	}
	if r.Rollups {
		fmt.Fprintf(w, "Rollups: %d blocks built in %s (%d documents written; %d rollup documents, %s on disk, primaries).\n\n",
			r.RollupStats.Blocks, r.RollupBuild.Round(time.Second), r.RollupStats.Docs, r.RollupDocs, r.RollupStore)
	} else {
		fmt.Fprint(w, "Events only (no rollups).\n\n")
	}
	fmt.Fprintf(w, "Index: %d documents, %s on disk (primaries). Page views alternate an admin (all customers) and one customer over 7, 30 and 90 days; cold: %d views, the request cache cleared before each; warm: %d views after them, cache kept.\n\n", r.Docs, r.StoreSize, r.Rounds, r.Warm.Rounds)
	fmt.Fprintln(w, "| call | cold p50 | cold p95 | warm p50 | warm p95 |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	names := make([]string, 0, len(r.Calls))
	for n := range r.Calls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "| /api/%s | %s | %s | %s | %s |\n", n, ms(quantile(r.Calls[n], .5)), ms(quantile(r.Calls[n], .95)), ms(quantile(r.Warm.Calls[n], .5)), ms(quantile(r.Warm.Calls[n], .95)))
	}
	fmt.Fprintf(w, "| **page view (all six calls at once)** | %s | %s | %s | %s |\n", ms(quantile(r.Page, .5)), ms(quantile(r.Page, .95)), ms(quantile(r.Warm.Page, .5)), ms(quantile(r.Warm.Page, .95)))
	for _, x := range []*ExplorerResult{&r, r.Warm} {
		for n, k := range x.Failed {
			fmt.Fprintf(w, "\n%d of the %s /api/%s calls failed (the explorer gives the cluster 30 s) and are not in the figures.", k, map[bool]string{true: "cold", false: "warm"}[x == &r], n)
		}
	}
	fmt.Fprintln(w)
}

// generate bulk-indexes cfg.Generate documents shaped like the pipeline's
// output (a workload library of 3,000 assets of 40 customers, Zipf
// popularity, a daily rhythm, real-looking referrers, places and devices)
// into daily indices of cfg.Prefix, with the sink's mappings.
func generate(ctx context.Context, cfg ExplorerConfig) error {
	tmpl, _ := json.Marshal(map[string]any{
		"index_patterns": []string{cfg.Prefix + "-*"}, "priority": 300,
		"template": map[string]any{"mappings": cfg.Store.Mappings(), "settings": map[string]any{"index": map[string]any{
			"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1", "translog": map[string]any{"durability": "async"}}}},
	})
	if err := doReq(ctx, cfg.Store, http.MethodPut, "/_index_template/"+cfg.Prefix, tmpl); err != nil {
		return err
	}
	wl := workload.New(workload.Config{Seed: 11, Assets: 3000, Tenants: 40, Hours: 1})
	end := cfg.Now.UTC().Truncate(24 * time.Hour)
	start := end.AddDate(0, 0, -cfg.Days)
	// Day by day, so that each bulk request goes to one index (one shard):
	// spreading a bulk over 90 shards costs 90 translog syncs.
	const workers, perBulk = 2, 5000
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for wi := range workers {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(wi)+1, 99))
			zipf := rand.NewZipf(rng, 1.1, 3, uint64(len(wl.Assets)-1))
			var buf bytes.Buffer
			var line []byte
			for d := wi; d < cfg.Days; d += workers {
				n := cfg.Generate / cfg.Days
				if d < cfg.Generate%cfg.Days {
					n++
				}
				day := start.AddDate(0, 0, d)
				action := `{"index":{"_index":"` + cfg.Prefix + "-" + day.Format("2006.01.02") + `"}}` + "\n"
				for i := range n {
					e := synthetic(rng, zipf, wl, day)
					buf.WriteString(action)
					line = e.AppendJSON(line[:0])
					buf.Write(line)
					buf.WriteByte('\n')
					if (i+1)%perBulk == 0 || i == n-1 {
						if err := doReq(gctx, cfg.Store, http.MethodPost, "/_bulk", buf.Bytes()); err != nil {
							return err
						}
						k := int64((i % perBulk) + 1)
						buf.Reset()
						if v := done.Add(k); v/500_000 != (v-k)/500_000 {
							fmt.Fprintf(cfg.Progress, "generated %d of %d\n", v, cfg.Generate)
						}
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := doReq(ctx, cfg.Store, http.MethodPut, "/"+cfg.Prefix+"-*/_settings", []byte(`{"index":{"refresh_interval":"1s"}}`)); err != nil {
		return err
	}
	return doReq(ctx, cfg.Store, http.MethodPost, "/"+cfg.Prefix+"-*/_refresh", nil)
}

var (
	benchRefs = []struct {
		url, domain string
		w           int
	}{
		{"", "", 30}, {"https://www.google.com/", "google.com", 20}, {"https://www.linkedin.com/feed/", "linkedin.com", 9},
		{"https://www.facebook.com/", "facebook.com", 8}, {"https://t.co/", "t.co", 5}, {"https://www.instagram.com/", "instagram.com", 4},
		{"https://www.bing.com/search", "bing.com", 3}, {"https://app.example.com/library", "app.example.com", 6}, {"customer", "", 15},
	}
	benchUAs = []event.UA{
		{Browser: "Chrome", OS: "Windows", Device: event.DeviceDesktop}, {Browser: "Safari", OS: "macOS", Device: event.DeviceDesktop},
		{Browser: "Safari", OS: "iOS", Device: event.DeviceMobile}, {Browser: "Chrome", OS: "Android", Device: event.DeviceMobile},
		{Browser: "Firefox", OS: "Windows", Device: event.DeviceDesktop}, {Browser: "Safari", OS: "iPadOS", Device: event.DeviceTablet},
		{Browser: "Edge", OS: "Windows", Device: event.DeviceDesktop},
	}
)

// synthetic returns one generated document.
func synthetic(rng *rand.Rand, zipf *rand.Zipf, wl *workload.Workload, day time.Time) event.Event {
	a := wl.Assets[zipf.Uint64()]
	// A daily rhythm: more in the afternoon.
	hour := int(24 * (0.25 + 0.75*rng.Float64()*rng.Float64()) * 1.2)
	if hour > 23 {
		hour = 23
	}
	t := day.Add(time.Duration(hour)*time.Hour + time.Duration(rng.Int64N(int64(time.Hour))))
	e := event.Event{EventTime: t, EventID: fmt.Sprintf("b%016x", rng.Uint64()), Source: event.SourceCloudFront, AssetID: a.ID, Tenant: a.Tenant,
		Asset: event.Asset{Title: a.Title, Type: a.Kind, Collection: a.Collection}, Status: 200, Bytes: a.Bytes}
	switch r := rng.IntN(100); {
	case r < 70:
		e.EventType = event.TypeView
	case r < 82:
		e.EventType = event.TypeDownload
	case r < 90:
		e.EventType, e.Status, e.Bytes = event.TypeView, 206, min(a.Bytes, 1<<20)
	default:
		e.EventType, e.Status, e.Bytes = event.TypeRequest, 404, 500
	}
	if rng.IntN(100) < 5 {
		e.Source = event.SourceApp
		e.Bytes = 0
	}
	e.ClientIP = fmt.Sprintf("%d.%d.%d.0", 1+rng.IntN(220), rng.IntN(256), rng.IntN(256))
	e.Geo = explorertest.Geo(e.ClientIP)
	total := 0
	for _, r := range benchRefs {
		total += r.w
	}
	pick := rng.IntN(total)
	for _, r := range benchRefs {
		if pick < r.w {
			e.Referrer, e.ReferringDomain = r.url, r.domain
			if r.url == "customer" {
				e.ReferringDomain = a.Tenant + ".example"
				e.Referrer = fmt.Sprintf("https://www.%s/campaign/%d", e.ReferringDomain, rng.IntN(50))
			}
			break
		}
		pick -= r.w
	}
	if rng.IntN(100) < 7 {
		e.Bot = true
		e.UA = event.UA{Browser: "Googlebot", Device: event.DeviceBot}
	} else {
		e.UA = benchUAs[rng.IntN(len(benchUAs))]
	}
	return e
}

// doReq sends one request to the store; a non-2xx answer, or a bulk
// answer with failed items, is an error.
func doReq(ctx context.Context, b explorer.Backend, method, path string, body []byte) error {
	answer, err := call(ctx, b, method, path, body)
	if err != nil {
		return err
	}
	if strings.HasSuffix(path, "/_bulk") && bytes.Contains(answer[:min(len(answer), 100)], []byte(`"errors":true`)) {
		return fmt.Errorf("bulk: some documents failed: %.300s", answer)
	}
	return nil
}

// call sends one request to the store and returns the body of a 2xx
// answer.
func call(ctx context.Context, b explorer.Backend, method, path string, body []byte) ([]byte, error) {
	status, answer, err := b.Do(ctx, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s: %.300s", method, path, status, http.StatusText(status), answer)
	}
	return answer, nil
}
