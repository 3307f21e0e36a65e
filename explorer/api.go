package explorer

import (
	"context"
	"net/http"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
)

// scope is the filter every query for p and q carries: the tenant (for a
// customer always its own, whatever q says), the asset type, the source,
// people only unless q.Bots or allBots, and one asset. It holds no time
// range.
func scope(p Principal, q Query, allBots bool) []obj {
	tenant := q.Tenant
	if !p.Admin {
		tenant = p.Tenant // withQuery already forced it; never rely on one place alone
	}
	var f []obj
	if tenant != "" {
		f = append(f, term("tenant", tenant))
	} else if !p.Admin {
		f = append(f, term("tenant", "\x00no tenant")) // unreachable: users without a tenant are refused at load
	}
	if q.Type != "" {
		f = append(f, term("asset.type", q.Type))
	}
	if q.Source != "" {
		f = append(f, term("source", q.Source))
	}
	if !q.Bots && !allBots {
		f = append(f, term("bot", false))
	}
	if q.Asset != "" {
		f = append(f, term("asset_id", q.Asset))
	}
	return f
}

// uses is the events counted as using an asset: views and downloads.
var uses = terms("event_type", []string{"view", "download"})

// periodQuery matches the current period and, with a comparison, the
// previous one, within the filters.
func periodQuery(q Query, filters []obj) obj {
	should := []obj{timeRange(q.From, q.To)}
	if pf, pt, ok := q.Previous(); ok {
		should = append(should, timeRange(pf, pt))
	}
	return obj{"bool": obj{"filter": filters, "should": should, "minimum_should_match": 1}}
}

// perPeriod wraps sub-aggregations in a "cur" filter and, with a
// comparison, a "prev" one.
func perPeriod(q Query, sub obj) obj {
	aggs := obj{"cur": filterAgg(timeRange(q.From, q.To), sub)}
	if pf, pt, ok := q.Previous(); ok {
		aggs["prev"] = filterAgg(timeRange(pf, pt), sub)
	}
	return aggs
}

// Period says which dates an answer covers.
type Period struct {
	From     string `json:"from"` // first day, YYYY-MM-DD
	To       string `json:"to"`   // last day, YYYY-MM-DD
	PrevFrom string `json:"prev_from,omitempty"`
	PrevTo   string `json:"prev_to,omitempty"`
	Compare  string `json:"compare"`
	Days     int    `json:"days"`
}

func periodOf(q Query) Period {
	p := Period{From: q.From.Format(time.DateOnly), To: q.To.AddDate(0, 0, -1).Format(time.DateOnly), Compare: q.Compare, Days: q.Days()}
	if pf, pt, ok := q.Previous(); ok {
		p.PrevFrom, p.PrevTo = pf.Format(time.DateOnly), pt.AddDate(0, 0, -1).Format(time.DateOnly)
	}
	return p
}

// Pair is a figure in the current period and the comparison period.
type Pair struct {
	Cur  float64  `json:"cur"`
	Prev *float64 `json:"prev,omitempty"` // absent without a comparison
}

func pairOf(q Query, cur, prev float64) Pair {
	p := Pair{Cur: cur}
	if _, _, ok := q.Previous(); ok {
		p.Prev = &prev
	}
	return p
}

// Point is one step of the activity chart.
type Point struct {
	T         time.Time `json:"t"`
	Views     int64     `json:"views"`
	Downloads int64     `json:"downloads"`
	Viewers   int64     `json:"viewers,omitempty"` // only when the chart asks for it (metric=viewers)
	Bytes     int64     `json:"bytes"`
	Sites     int64     `json:"sites,omitempty"` // only with metric=sites
}

// Freshness says how current the data is.
type Freshness struct {
	Newest *time.Time `json:"newest"`           // newest event of the caller's data
	LagMS  *int64     `json:"lag_ms,omitempty"` // workers' lag behind the stream, when known
	LagAt  *time.Time `json:"lag_at,omitempty"`
	Now    time.Time  `json:"now"`
}

// Summary is the answer of /api/summary: headline figures and activity.
type Summary struct {
	Period    Period          `json:"period"`
	Interval  string          `json:"interval"` // day or hour
	Cards     map[string]Pair `json:"cards"`    // views, downloads, viewers, bytes, sites
	Series    []Point         `json:"series"`
	Prev      []Point         `json:"prev,omitempty"`
	Freshness Freshness       `json:"freshness"`
}

func metricAggs() obj {
	return obj{
		"views":     filterAgg(term("event_type", "view"), nil),
		"downloads": filterAgg(term("event_type", "download"), nil),
		"viewers":   obj{"cardinality": obj{"field": "client_ip", "precision_threshold": 2000}},
		"bytes":     obj{"sum": obj{"field": "bytes"}},
		"sites":     obj{"cardinality": obj{"field": "referring_domain", "precision_threshold": 2000}},
	}
}

// seriesAggs are the per-step figures of the activity chart: the cheap
// counts always, a distinct count only for the chart that shows it (one
// estimate per day per period is most of a summary's cost).
func seriesAggs(metric string) obj {
	a := obj{
		"views":     filterAgg(term("event_type", "view"), nil),
		"downloads": filterAgg(term("event_type", "download"), nil),
		"bytes":     obj{"sum": obj{"field": "bytes"}},
	}
	switch metric {
	case "viewers":
		a["viewers"] = obj{"cardinality": obj{"field": "client_ip", "precision_threshold": 500}}
	case "sites":
		a["sites"] = obj{"cardinality": obj{"field": "referring_domain", "precision_threshold": 500}}
	}
	return a
}

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	interval := "1d"
	if q.Days() <= 2 {
		interval = "1h"
	}
	// No extended_bounds: the empty steps are filled in here, so that a
	// day's shard gets the same request (after OpenSearch rewrites a range
	// that covers the whole shard) whatever the period, and its answer
	// comes from the request cache for every later period and user.
	hist := func(from, to time.Time) obj {
		return obj{"date_histogram": obj{"field": "event_time", "fixed_interval": interval}, "aggs": seriesAggs(q.Metric)}
	}
	aggs := obj{"cur": filterAgg(timeRange(q.From, q.To), merge(metricAggs(), obj{"h": hist(q.From, q.To)}))}
	pf, pt, cmp := q.Previous()
	if cmp {
		aggs["prev"] = filterAgg(timeRange(pf, pt), merge(metricAggs(), obj{"h": hist(pf, pt)}))
	}
	body := obj{"size": 0, "track_total_hits": false, "query": periodQuery(q, scope(p, q, false)), "aggs": aggs}
	var res node
	var fresh Freshness
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() (err error) { res, err = s.os.search(ctx, body); return err })
	g.Go(func() (err error) { fresh, err = s.freshness(ctx, p, q); return err })
	if err := g.Wait(); err != nil {
		s.fail(w, r, err)
		return
	}
	cur, prev := res.agg("cur"), res.agg("prev")
	card := func(get func(node) float64) Pair { return pairOf(q, get(cur), get(prev)) }
	out := Summary{
		Period: periodOf(q), Interval: map[string]string{"1d": "day", "1h": "hour"}[interval], Freshness: fresh,
		Cards: map[string]Pair{
			"views":     card(func(n node) float64 { return float64(n.sub("views").count()) }),
			"downloads": card(func(n node) float64 { return float64(n.sub("downloads").count()) }),
			"viewers":   card(func(n node) float64 { return n.sub("viewers").value() }),
			"bytes":     card(func(n node) float64 { return n.sub("bytes").value() }),
			"sites":     card(func(n node) float64 { return n.sub("sites").value() }),
		},
		Series: points(cur.sub("h"), q.From, q.To, interval),
	}
	if cmp {
		out.Prev = points(prev.sub("h"), pf, pt, interval)
	}
	s.respond(w, r, q, out, map[string]table{"series": seriesTable(out)})
}

// points returns one Point per step from from to to, filled from the
// histogram's buckets (steps without events are zero).
func points(h node, from, to time.Time, interval string) []Point {
	step := 24 * time.Hour
	if interval == "1h" {
		step = time.Hour
	}
	by := map[int64]node{}
	for _, b := range h.buckets() {
		by[int64(b.num("key"))] = b
	}
	var out []Point
	for t := from; t.Before(to); t = t.Add(step) {
		p := Point{T: t.UTC()}
		if b, ok := by[t.UnixMilli()]; ok {
			p.Views, p.Downloads = b.sub("views").count(), b.sub("downloads").count()
			p.Viewers, p.Bytes, p.Sites = int64(b.sub("viewers").value()), int64(b.sub("bytes").value()), int64(b.sub("sites").value())
		}
		out = append(out, p)
	}
	return out
}

// freshness finds the newest event of the caller's data (any time, people
// or bots) and the workers' lag.
func (s *Server) freshness(ctx context.Context, p Principal, q Query) (Freshness, error) {
	key := q.Tenant
	if !p.Admin {
		key = p.Tenant
	}
	now := s.cfg.Now().UTC()
	if v, ok := s.freshCache.Load(key); ok && now.Sub(v.(cachedFreshness).at) < freshTTL {
		f := v.(cachedFreshness).f
		f.Now = now
		return f, nil
	}
	f, err := s.measureFreshness(ctx, p, q)
	if err == nil {
		s.freshCache.Store(key, cachedFreshness{at: now, f: f})
	}
	return f, err
}

// freshTTL is how long a freshness answer is reused: it looks at every
// index (newest event of any time), and a few seconds do not matter.
const freshTTL = 15 * time.Second

type cachedFreshness struct {
	at time.Time
	f  Freshness
}

func (s *Server) measureFreshness(ctx context.Context, p Principal, q Query) (Freshness, error) {
	f := Freshness{Now: s.cfg.Now().UTC()}
	var filters []obj
	if t := scope(p, Query{Tenant: q.Tenant, Bots: true}, true); len(t) > 0 {
		filters = t
	}
	res, err := s.os.search(ctx, obj{"size": 0, "track_total_hits": false, "query": obj{"bool": obj{"filter": filters}},
		"aggs": obj{"newest": obj{"max": obj{"field": "event_time"}}}})
	if err != nil {
		return f, err
	}
	if t := res.agg("newest").time(); !t.IsZero() {
		f.Newest = &t
	}
	if s.cfg.Lag != nil {
		if lag, at, err := s.cfg.Lag(ctx); err == nil {
			ms := lag.Milliseconds()
			f.LagMS, f.LagAt = &ms, &at
		} else {
			s.log.Debug("workers' lag unknown", zapErr(err))
		}
	}
	return f, nil
}

func merge(a, b obj) obj {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	writeJSON(w, http.StatusOK, struct {
		Principal
		Today string `json:"today"`
	}{p, s.cfg.Now().UTC().Format(time.DateOnly)})
}

// Tenant is a customer with data, for an admin's customer picker.
type Tenant struct {
	ID     string `json:"id"`
	Events int64  `json:"events"`
}

func (s *Server) handleTenants(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	if !p.Admin {
		writeJSON(w, http.StatusOK, []Tenant{{ID: p.Tenant}})
		return
	}
	res, err := s.os.search(r.Context(), obj{"size": 0, "track_total_hits": false, "aggs": obj{"t": obj{"terms": obj{"field": "tenant", "size": 2000}}}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []Tenant{}
	for _, b := range res.agg("t").buckets() {
		out = append(out, Tenant{ID: b.key(), Events: b.count()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}
