package explorer

import (
	"context"
	"time"
)

// Unique viewers are counted per day and added up over the period: a
// network address seen on three days of a week counts three times, as
// "daily unique viewers" (and as Plausible counts visitors, whose daily
// identifiers cannot follow anyone across days). It is what rollups can
// give exactly: a day's distinct addresses are a number that days can be
// added from, while a period's distinct addresses would need the
// addresses (or a sketch of them) of every day. Each day's figure is
// OpenSearch's estimate (exact below distinctPrecision addresses, then
// within about 1 %), computed the same way from events and for rollups,
// so both give the same figure. It overcounts people who come back on
// another day; the page says the figure is approximate and counted per
// day.
//
// The viewers cube holds, for each finished day, one document per
// combination of the filters (each customer or all, each asset type or
// all, each source or all, people only or everyone) with that day's
// distinct addresses in viewers; rollup.vkey names the combination. One
// asset's page counts its events.

// viewerDays are distinct viewers per step (day or hour), keyed by the
// step's start in ms.
type viewerDays map[int64]float64

// total adds up the steps in [from, to).
func (v viewerDays) total(from, to time.Time) float64 {
	var sum float64
	for k, n := range v {
		if k >= from.UnixMilli() && k < to.UnixMilli() {
			sum += n
		}
	}
	return sum
}

// viewersKey names the scope's combination of filters in the viewers cube.
func viewersKey(sc scopeSpec) string {
	or := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	bots := "people"
	if sc.bots {
		bots = "all"
	}
	return or(sc.typ) + "|" + or(sc.source) + "|" + bots
}

// viewers returns the distinct viewers of each day (hourly: each hour,
// from events only) of q's periods in scope.
func (s *Server) viewers(ctx context.Context, q Query, sc scopeSpec, hourly bool) (viewerDays, error) {
	interval := "1d"
	c := cubeViewers
	if hourly {
		interval, c = "1h", nil
	}
	res, err := s.run(ctx, ask{cube: c, spans: periodSpans(q), scope: sc, perDay: true, body: obj{"size": 0, "aggs": obj{
		"d": obj{"date_histogram": obj{"field": "event_time", "fixed_interval": interval}, "aggs": obj{
			"events":  distinct("client_ip"),
			"rollups": obj{"sum": obj{"field": "viewers"}},
		}},
	}}})
	if err != nil {
		return nil, err
	}
	out := viewerDays{}
	for _, b := range res.agg("d").buckets() {
		// A day is read either from its events or from its rollup.
		out[int64(b.num("key"))] = b.sub("events").value() + b.sub("rollups").value()
	}
	return out, nil
}
