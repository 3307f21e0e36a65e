package explorer

import (
	"context"
	"net/http"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
)

// uses is the events counted as using an asset: views and downloads.
var uses = terms("event_type", []string{"view", "download"})

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

// countAggs are the figures counted per period and per step of the
// activity: views, downloads and bytes.
func countAggs() obj {
	return obj{
		"views":     filterAgg(term("event_type", "view"), nil),
		"downloads": filterAgg(term("event_type", "download"), nil),
		"bytes":     obj{"sum": obj{"field": "bytes"}},
	}
}

// distinct counts distinct values of a field, as OpenSearch estimates
// them (exact up to the threshold, then within about 1 %).
func distinct(field string) obj {
	return obj{"cardinality": obj{"field": field, "precision_threshold": distinctPrecision}}
}

// distinctPrecision is the precision threshold of every distinct count,
// the same for rollups and events so that both give the same estimate.
const distinctPrecision = 2000

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	hourly := q.Days() <= 2
	interval, step := "1d", 24*time.Hour
	if hourly {
		interval, step = "1h", time.Hour
	}
	sc := scopeOf(p, q, false)
	spans := periodSpans(q)
	// No extended_bounds: the empty steps are filled in here, so that a
	// day's shard gets the same request (after OpenSearch rewrites a range
	// that covers the whole shard) whatever the period, and its answer
	// comes from the request cache for every later period and user.
	hist := func(sub obj) obj {
		return obj{"date_histogram": obj{"field": "event_time", "fixed_interval": interval}, "aggs": sub}
	}
	counts := countAggs()
	counts["h"] = hist(countAggs())
	core := ask{cube: cubeCore, spans: spans, scope: sc, body: obj{"size": 0, "aggs": perPeriod(q, counts)}, perDay: true}
	if hourly {
		core.cube, core.hourly = cubeHours, true
	}
	sitesAggs := obj{"sites": distinct("referring_domain")}
	if q.Metric == "sites" {
		sitesAggs["h"] = hist(obj{"sites": distinct("referring_domain")})
	}
	sites := ask{cube: cubeSites, spans: spans, scope: sc, body: obj{"size": 0, "aggs": perPeriod(q, sitesAggs)}, perDay: q.Metric == "sites", hourly: hourly && q.Metric == "sites"}
	var coreRes, sitesRes node
	var viewers, hourViewers viewerDays
	var fresh Freshness
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() (err error) { coreRes, err = s.run(ctx, core); return err })
	g.Go(func() (err error) { sitesRes, err = s.run(ctx, sites); return err })
	g.Go(func() (err error) { viewers, err = s.viewers(ctx, q, sc, false); return err })
	if hourly && q.Metric == "viewers" {
		g.Go(func() (err error) { hourViewers, err = s.viewers(ctx, q, sc, true); return err })
	}
	g.Go(func() (err error) { fresh, err = s.freshness(ctx, p, q); return err })
	if err := g.Wait(); err != nil {
		s.fail(w, r, err)
		return
	}
	pf, pt, cmp := q.Previous()
	cur, prev := coreRes.agg("cur"), coreRes.agg("prev")
	scur, sprev := sitesRes.agg("cur"), sitesRes.agg("prev")
	card := func(get func(node) float64) Pair { return pairOf(q, get(cur), get(prev)) }
	out := Summary{
		Period: periodOf(q), Interval: map[bool]string{false: "day", true: "hour"}[hourly], Freshness: fresh,
		Cards: map[string]Pair{
			"views":     card(func(n node) float64 { return float64(n.sub("views").count()) }),
			"downloads": card(func(n node) float64 { return float64(n.sub("downloads").count()) }),
			"viewers":   pairOf(q, viewers.total(q.From, q.To), viewers.total(pf, pt)),
			"bytes":     card(func(n node) float64 { return n.sub("bytes").value() }),
			"sites":     pairOf(q, scur.sub("sites").value(), sprev.sub("sites").value()),
		},
	}
	perStep := func(cur bool) (map[int64]float64, map[int64]float64) {
		var v map[int64]float64
		switch {
		case q.Metric == "viewers" && hourly:
			v = hourViewers
		case q.Metric == "viewers":
			v = viewers
		}
		var st map[int64]float64
		if q.Metric == "sites" {
			n := scur
			if !cur {
				n = sprev
			}
			st = map[int64]float64{}
			for _, b := range n.sub("h").buckets() {
				st[int64(b.num("key"))] = b.sub("sites").value()
			}
		}
		return v, st
	}
	v, st := perStep(true)
	out.Series = points(cur.sub("h"), q.From, q.To, step, v, st)
	if cmp {
		v, st := perStep(false)
		out.Prev = points(prev.sub("h"), pf, pt, step, v, st)
	}
	s.respond(w, r, q, out, map[string]table{"series": seriesTable(out)})
}

// points returns one Point per step from from to to, filled from the
// histogram's buckets (steps without events are zero) and, when given,
// the viewers and sites of each step (keyed by its start in ms).
func points(h node, from, to time.Time, step time.Duration, viewers, sites map[int64]float64) []Point {
	by := map[int64]node{}
	for _, b := range h.buckets() {
		by[int64(b.num("key"))] = b
	}
	var out []Point
	for t := from; t.Before(to); t = t.Add(step) {
		p := Point{T: t.UTC()}
		k := t.UnixMilli()
		if b, ok := by[k]; ok {
			p.Views, p.Downloads, p.Bytes = b.sub("views").count(), b.sub("downloads").count(), int64(b.sub("bytes").value())
		}
		p.Viewers, p.Sites = int64(viewers[k]), int64(sites[k])
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
	sc := scopeOf(p, Query{Tenant: q.Tenant}, true)
	res, err := s.run(ctx, ask{spans: []span{{}}, scope: sc, body: obj{"size": 0, "aggs": obj{"newest": obj{"max": obj{"field": "event_time"}}}}})
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
	// Every customer's events of all time: the customers' rollup
	// documents (not the all-customers ones, which carry no tenant).
	sc := scopeSpec{admin: true, bots: true, byTenant: true}
	res, err := s.run(r.Context(), ask{cube: cubeCore, spans: []span{{}}, scope: sc,
		body: obj{"size": 0, "aggs": obj{"t": obj{"terms": obj{"field": "tenant", "size": 2000}}}}})
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
