package explorer

import (
	"context"
	"maps"
	"strings"
)

// scopeSpec is what a caller may see, decided on the server: the customer
// (for a customer user always its own, whatever the request says), asset
// type, source, automated traffic and one asset.
type scopeSpec struct {
	tenant string // "" = every customer (admins only)
	admin  bool
	typ    string
	source string
	bots   bool // automated traffic included
	asset  string
	// byTenant (admins, every customer): the answer is split by
	// customer, so it reads the customers' rollup documents rather than
	// the all-customers ones.
	byTenant bool
}

// scopeOf is the scope of p's request q; allBots includes automated
// traffic whatever q says (for figures that split people from bots).
func scopeOf(p Principal, q Query, allBots bool) scopeSpec {
	tenant := q.Tenant
	if !p.Admin {
		tenant = p.Tenant // withQuery already forced it; never rely on one place alone
	}
	return scopeSpec{tenant: tenant, admin: p.Admin, typ: q.Type, source: q.Source, bots: q.Bots || allBots, asset: q.Asset}
}

// noTenant matches nothing: the filter of a customer user without a
// tenant, which NewUsers refuses, so it is never sent.
var noTenant = term("tenant", "\x00no tenant")

// events is the scope's filter on events.
func (sc scopeSpec) events() []obj {
	var f []obj
	if sc.tenant != "" {
		f = append(f, term("tenant", sc.tenant))
	} else if !sc.admin {
		f = append(f, noTenant)
	}
	if sc.typ != "" {
		f = append(f, term("asset.type", sc.typ))
	}
	if sc.source != "" {
		f = append(f, term("source", sc.source))
	}
	if !sc.bots {
		f = append(f, term("bot", false))
	}
	if sc.asset != "" {
		f = append(f, term("asset_id", sc.asset))
	}
	return f
}

// rollup is the scope's filter on c's rollup documents. A customer's is
// the same tenant term as on its events: only documents of its own carry
// its tenant (documents of all customers carry none).
func (sc scopeSpec) rollup(c *cube) []obj {
	var f []obj
	switch {
	case sc.tenant != "":
		f = append(f, term("tenant", sc.tenant))
	case !sc.admin:
		f = append(f, noTenant)
	case c.assets:
	case sc.byTenant:
		f = append(f, term("rollup.level", "tenant"))
	default:
		f = append(f, term("rollup.level", "all"))
	}
	if c.viewers {
		return append(f, term("rollup.vkey", viewersKey(sc)))
	}
	if sc.typ != "" {
		f = append(f, term("asset.type", sc.typ))
	}
	if sc.source != "" {
		f = append(f, term("source", sc.source))
	}
	if !sc.bots {
		f = append(f, term("bot", false))
	}
	if sc.asset != "" {
		f = append(f, term("asset_id", sc.asset))
	}
	return f
}

// ask is one search of the API: the aggregations of body over the events
// in scope within spans (and matching filters). With a cube, the blocks
// of whole days that have a current rollup are read from it and the rest
// from the events, in the same search: the aggregations are written for
// events and count rollup documents as the events they stand for.
type ask struct {
	cube    *cube // nil: events only
	spans   []span
	scope   scopeSpec
	filters []obj // on fields that events and the cube's documents share
	body    obj   // size, aggs, sort, ... (not query)
	perDay  bool  // the answer splits days: day blocks only
	hourly  bool  // the answer splits hours
}

// run sends the ask as one search.
func (s *Server) run(ctx context.Context, a ask) (node, error) {
	c := a.cube
	if c != nil && a.scope.asset != "" && !c.assets {
		c = nil // one asset's figures are read from its events
	}
	if c != nil && c.uses && !hasUses(a.filters) {
		c = nil // the cube counts uses only
	}
	var p plan
	if c != nil && s.rollups != nil {
		p = s.rollups.snapshot(ctx).plan(c, a.spans, a.perDay, a.hourly)
	} else {
		p.raw = a.spans
	}
	body := maps.Clone(a.body)
	if body == nil {
		body = obj{}
	}
	if _, ok := body["track_total_hits"]; !ok {
		body["track_total_hits"] = false
	}
	if c != nil && s.rollups != nil && len(p.keys) == 0 && len(p.raw) == 0 {
		// Nothing to read: every span is before the first event or on
		// days without any. The same aggregations over no documents,
		// from the rollup indices' few shards rather than every events
		// index's.
		body["query"] = matchNone()
		return s.store.search(ctx, s.rollups.dataPattern(), body)
	}
	events := append(append(a.scope.events(), a.filters...), spansQuery(p.raw))
	if len(p.keys) == 0 {
		body["query"] = boolFilter(events...)
		return s.store.search(ctx, s.store.raw, body)
	}
	var spans []span
	spans = append(spans, a.spans...)
	rolled := append(append(a.scope.rollup(c), a.filters...), terms("rollup.key", p.keys), spansQuery(spans))
	if len(p.raw) == 0 {
		body["query"] = boolFilter(rolled...)
		return s.store.search(ctx, s.rollups.dataPattern(), body)
	}
	// Stale rollup documents of a day that is read from its events must
	// not count twice: the events' branch excludes every rollup document.
	eventsOnly := obj{"bool": obj{"filter": events, "must_not": []obj{{"exists": obj{"field": "rollup.key"}}}}}
	body["query"] = obj{"bool": obj{"should": []obj{eventsOnly, boolFilter(rolled...)}, "minimum_should_match": 1}}
	return s.store.search(ctx, strings.Join([]string{s.store.raw, s.rollups.dataPattern()}, ","), body)
}

// periodSpans are q's period and, with a comparison, the previous one.
func periodSpans(q Query) []span {
	out := []span{{q.From, q.To}}
	if pf, pt, ok := q.Previous(); ok {
		out = append(out, span{pf, pt})
	}
	return out
}

// hasUses reports whether filters keep uses only.
func hasUses(filters []obj) bool {
	u := string(mustJSON(uses))
	for _, f := range filters {
		if string(mustJSON(f)) == u {
			return true
		}
	}
	return false
}
