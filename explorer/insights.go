package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
)

// Embed is a page that referred uses of one asset: where it is embedded or
// linked, with when it was first and last seen (up to the period's end)
// and its uses in the period.
type Embed struct {
	Page      string    `json:"page"`
	Site      string    `json:"site"`
	Channel   string    `json:"channel"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Uses      int64     `json:"uses"` // in the period
	Total     int64     `json:"total"`
}

// AppEvent is one platform event of an asset's timeline.
type AppEvent struct {
	Time       time.Time       `json:"time"`
	Type       string          `json:"type"`
	User       string          `json:"user,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// AssetPage is the answer of /api/asset: what is particular to one asset
// (its other figures come from the other calls with asset=...).
type AssetPage struct {
	Period     Period           `json:"period"`
	AssetID    string           `json:"asset_id"`
	Title      string           `json:"title"`
	Type       string           `json:"type"`
	Collection string           `json:"collection"`
	Tenant     string           `json:"tenant"`
	FirstSeen  time.Time        `json:"first_seen"`
	LastSeen   time.Time        `json:"last_seen"`
	Embeds     []Embed          `json:"embeds"`
	Timeline   []AppEvent       `json:"timeline"`
	AppCounts  map[string]int64 `json:"app_counts"` // shares, conversions, permission changes in the period
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	if q.Asset == "" {
		writeError(w, http.StatusBadRequest, "bad_parameter", "asset: required")
		return
	}
	// One asset's page reads its events (first and last seen need their
	// times): the history up to the period's end; bots follow the switch.
	hist := ask{spans: []span{{to: q.To}}, scope: scopeOf(p, q, false)}
	// The timeline is the platform's own events, whatever the source and bots switches say.
	tl := ask{spans: []span{{q.From, q.To}}, scope: scopeOf(p, Query{Tenant: q.Tenant, Asset: q.Asset}, true),
		filters: []obj{term("source", "app"), terms("event_type", []string{"share", "convert", "permission_change"})}}
	var meta, timeline node
	errc := make(chan error, 2)
	go func() {
		var err error
		hist.body = obj{"size": 0, "aggs": obj{
			"meta":  assetMeta(),
			"owner": termsAgg("tenant", 1, nil),
			"first": obj{"min": obj{"field": "event_time"}},
			"last":  obj{"max": obj{"field": "event_time"}},
			"embeds": termsAgg("referrer", 50, obj{
				"site":  termsAgg("referring_domain", 1, nil),
				"first": obj{"min": obj{"field": "event_time"}},
				"last":  obj{"max": obj{"field": "event_time"}},
				"cur":   filterAgg(boolFilter(timeRange(q.From, q.To), uses), nil),
			}),
		}}
		meta, err = s.run(r.Context(), hist)
		errc <- err
	}()
	go func() {
		var err error
		tl.body = obj{"size": 50, "sort": []obj{{"event_time": obj{"order": "desc"}}}, "_source": []string{"event_time", "event_type", "user_id", "properties"},
			"aggs": obj{"types": termsAgg("event_type", 5, nil)}}
		timeline, err = s.run(r.Context(), tl)
		errc <- err
	}()
	for range 2 {
		if err := <-errc; err != nil {
			s.fail(w, r, err)
			return
		}
	}
	first := meta.agg("first").time()
	if first.IsZero() {
		writeError(w, http.StatusNotFound, "no_asset", "no data for this asset")
		return
	}
	m := meta.agg("meta").source()
	out := AssetPage{Period: periodOf(q), AssetID: q.Asset, Title: m.path("asset.title"), Type: m.path("asset.type"),
		Collection: m.path("asset.collection"), FirstSeen: first, LastSeen: meta.agg("last").time(),
		Embeds: []Embed{}, Timeline: []AppEvent{}, AppCounts: map[string]int64{}}
	if b := meta.agg("owner").buckets(); len(b) > 0 {
		out.Tenant = b[0].key()
	}
	for _, b := range meta.agg("embeds").buckets() {
		site := ""
		if sb := b.sub("site").buckets(); len(sb) > 0 {
			site = sb[0].key()
		}
		out.Embeds = append(out.Embeds, Embed{Page: b.key(), Site: site, Channel: s.channel(site), FirstSeen: b.sub("first").time(),
			LastSeen: b.sub("last").time(), Uses: b.sub("cur").count(), Total: b.count()})
	}
	sort.SliceStable(out.Embeds, func(i, j int) bool { return out.Embeds[i].Uses > out.Embeds[j].Uses })
	for _, h := range timeline.hits() {
		t, _ := time.Parse(time.RFC3339Nano, h.str("event_time"))
		out.Timeline = append(out.Timeline, AppEvent{Time: t, Type: h.str("event_type"), User: h.str("user_id"), Properties: h["properties"]})
	}
	for _, b := range timeline.agg("types").buckets() {
		out.AppCounts[b.key()] = b.count()
	}
	et := table{header: []string{"page", "site", "channel", "first_seen", "last_seen", "uses", "total"}}
	for _, e := range out.Embeds {
		et.rows = append(et.rows, []string{e.Page, e.Site, e.Channel, e.FirstSeen.Format(time.RFC3339), e.LastSeen.Format(time.RFC3339), itoa(e.Uses), itoa(e.Total)})
	}
	tt := table{header: []string{"time", "type", "user", "properties"}}
	for _, e := range out.Timeline {
		tt.rows = append(tt.rows, []string{e.Time.Format(time.RFC3339), e.Type, e.User, string(e.Properties)})
	}
	s.respond(w, r, q, out, map[string]table{"embeds": et, "timeline": tt})
}

// Highlight is one plain-language finding. The page words it from its
// message catalog by Kind:
//
//	asset_up, asset_down   an asset's uses changed (Change %, Site: where most came from)
//	new_sites              Sites linked to the assets for the first time
//	new_embeds             Count assets were used from a site for the first time
//	country_change         uses (or downloads, Metric) from Country changed by Change %
type Highlight struct {
	Kind    string   `json:"kind"`
	AssetID string   `json:"asset_id,omitempty"`
	Title   string   `json:"title,omitempty"`
	Type    string   `json:"type,omitempty"`
	Cur     int64    `json:"cur"`
	Prev    int64    `json:"prev"`
	Change  *float64 `json:"change,omitempty"` // percent; absent when there was nothing before
	Site    string   `json:"site,omitempty"`
	Sites   []string `json:"sites,omitempty"`
	Country string   `json:"country,omitempty"` // ISO code
	Metric  string   `json:"metric,omitempty"`  // uses or downloads
	Count   int      `json:"count,omitempty"`
}

// Highlights is the answer of /api/highlights.
type Highlights struct {
	Period     Period      `json:"period"`
	MinChange  float64     `json:"min_change"`
	MinCount   int64       `json:"min_count"`
	Highlights []Highlight `json:"highlights"`
}

// minSiteUses is the fewest uses from a newly seen site worth a mention.
const minSiteUses = 5

func (s *Server) handleHighlights(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	sc := scopeOf(p, q, false)
	_, _, cmp := q.Previous()
	out := Highlights{Period: periodOf(q), MinChange: s.cfg.HighlightMinChange, MinCount: s.cfg.HighlightMinCount, Highlights: []Highlight{}}
	var movers []Highlight
	var countries node
	var sites, before siteAssets
	g, ctx := errgroup.WithContext(r.Context())
	if cmp {
		g.Go(func() error {
			_, _, cur, prev, err := s.topAssets(ctx, q, sc, rankAtLeast, true)
			if err != nil {
				return err
			}
			movers = s.assetMovers(cur, prev)
			// The movers' titles, and where most of the risers' uses
			// came from: counted now for those whose figures came
			// without it, a few assets at most.
			var ids, shown []string
			for _, h := range movers {
				shown = append(shown, h.AssetID)
				if h.Kind == "asset_up" && cur[h.AssetID].siteUnasked {
					ids = append(ids, h.AssetID)
				}
			}
			var sites map[string]string
			var titles map[string]node
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() (err error) { sites, err = s.mainSites(ctx, q, sc, ids); return err })
			g.Go(func() (err error) { titles, err = s.assetTitles(ctx, q, sc, shown); return err })
			if err := g.Wait(); err != nil {
				return err
			}
			for i, h := range movers {
				if site, ok := sites[h.AssetID]; ok && h.Kind == "asset_up" {
					movers[i].Site = site
				}
				movers[i].Title, movers[i].Type = titles[h.AssetID].path("asset.title"), titles[h.AssetID].path("asset.type")
			}
			return nil
		})
		g.Go(func() error {
			per := obj{"downloads": filterAgg(term("event_type", "download"), nil)}
			var err error
			countries, err = s.run(ctx, ask{cube: cubePlaces, spans: periodSpans(q), scope: sc, filters: []obj{uses},
				body: obj{"size": 0, "aggs": obj{"c": obj{"terms": obj{"field": "geo.country_iso", "size": 250}, "aggs": perPeriod(q, per)}}}})
			return err
		})
	}
	g.Go(func() error {
		// Sites, and assets on each site, with enough uses in the period...
		websites := obj{"bool": obj{"filter": []obj{{"exists": obj{"field": "referring_domain"}}},
			"must_not": []obj{terms("referring_domain", s.notWebsites())}}}
		res, err := s.run(ctx, ask{cube: cubeAssetSites, spans: []span{{q.From, q.To}}, scope: sc, filters: []obj{uses, websites},
			body: obj{"size": 0, "aggs": obj{"sites": obj{"terms": obj{"field": "referring_domain", "size": 300, "min_doc_count": minSiteUses}, "aggs": obj{
				"assets": obj{"terms": obj{"field": "asset_id", "size": 200, "min_doc_count": minSiteUses}},
			}}}}})
		if err != nil {
			return err
		}
		if sites, err = decodeSiteAssets(res); err != nil {
			return err
		}
		// ...and which of them were seen before it.
		// (A set, not union: up to 300 sites of 200 assets each, and
		// union copies the list for every one.)
		var doms, ids []string
		seen := map[string]bool{}
		for _, b := range sites.Sites.Buckets {
			doms = append(doms, b.Key)
			for _, a := range b.Assets.Buckets {
				if !seen[a.Key] {
					seen[a.Key] = true
					ids = append(ids, a.Key)
				}
			}
		}
		if len(doms) == 0 {
			return nil
		}
		before, err = s.seenBefore(ctx, q, sc, doms, ids)
		return err
	})
	if err := g.Wait(); err != nil {
		s.fail(w, r, err)
		return
	}
	out.Highlights = append(out.Highlights, movers...)
	if cmp {
		out.Highlights = append(out.Highlights, s.countryMovers(countries.agg("c"))...)
	}
	out.Highlights = append(out.Highlights, s.firstSeen(sites, before)...)
	ht := table{header: []string{"kind", "asset_id", "title", "count_now", "count_before", "change_pct", "site", "country", "metric", "sites"}}
	for _, h := range out.Highlights {
		c := ""
		if h.Change != nil {
			c = ftoa(math.Round(*h.Change*10) / 10)
		}
		ht.rows = append(ht.rows, []string{h.Kind, h.AssetID, h.Title, itoa(h.Cur), itoa(h.Prev), c, h.Site, h.Country, h.Metric, joinSites(h.Sites)})
	}
	s.respond(w, r, q, out, map[string]table{"highlights": ht})
}

func joinSites(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// pct is the change from prev to cur in percent; nil when prev is 0.
func pct(cur, prev int64) *float64 {
	if prev == 0 {
		return nil
	}
	v := (float64(cur)/float64(prev) - 1) * 100
	return &v
}

// assetMovers finds assets whose uses rose or fell by at least the
// threshold, with enough uses to matter: up to three risers and two
// fallers, the biggest absolute changes first.
func (s *Server) assetMovers(cur, prev map[string]assetFig) []Highlight {
	var up, down []Highlight
	ids := make([]string, 0, len(cur)+len(prev))
	for id := range cur {
		ids = append(ids, id)
	}
	for id := range prev {
		if _, ok := cur[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, b := cur[id], prev[id]
		now, before := c.views+c.downloads, b.views+b.downloads
		if max(now, before) < s.cfg.HighlightMinCount {
			continue
		}
		h := Highlight{AssetID: id, Cur: now, Prev: before, Change: pct(now, before)}
		switch {
		case now > before && (h.Change == nil || *h.Change >= s.cfg.HighlightMinChange):
			h.Kind, h.Site = "asset_up", c.site
			up = append(up, h)
		case now < before && *h.Change <= -s.cfg.HighlightMinChange:
			h.Kind = "asset_down"
			down = append(down, h)
		}
	}
	sort.SliceStable(up, func(i, j int) bool { return up[i].Cur-up[i].Prev > up[j].Cur-up[j].Prev })
	sort.SliceStable(down, func(i, j int) bool { return down[i].Prev-down[i].Cur > down[j].Prev-down[j].Cur })
	return append(up[:min(3, len(up))], down[:min(2, len(down))]...)
}

// countryMovers reports the two biggest changes of uses or downloads by
// country that pass the thresholds.
func (s *Server) countryMovers(res node) []Highlight {
	var hs []Highlight
	for _, b := range res.buckets() {
		for _, metric := range []string{"uses", "downloads"} {
			cur, prev := b.sub("cur").count(), b.sub("prev").count()
			if metric == "downloads" {
				cur, prev = b.sub("cur").sub("downloads").count(), b.sub("prev").sub("downloads").count()
			}
			c := pct(cur, prev)
			if max(cur, prev) < s.cfg.HighlightMinCount || c == nil || math.Abs(*c) < s.cfg.HighlightMinChange {
				continue
			}
			hs = append(hs, Highlight{Kind: "country_change", Country: b.key(), Metric: metric, Cur: cur, Prev: prev, Change: c})
		}
	}
	sort.SliceStable(hs, func(i, j int) bool {
		return math.Abs(float64(hs[i].Cur-hs[i].Prev)) > math.Abs(float64(hs[j].Cur-hs[j].Prev))
	})
	return hs[:min(2, len(hs))]
}

// beforeSize is how many earlier assets seenBefore asks of each site,
// given the number of candidates (a hook for tests).
var beforeSize = func(candidates int) int { return max(candidates, 200) }

// seenBefore returns which of the sites doms, and which of the assets ids
// on each of them, had uses before q's period. Each site lists the assets
// used from it before, up to beforeSize (the candidates' number, and at
// least 200), without an include list of the candidates: at thousands of
// them (an admin's view of all customers) that list cost as much again as
// the rest of the search. A site whose list left assets out (its
// sum_other_doc_count is not 0) may have left out a candidate, so the
// search is then asked again restricted to the candidates, where every
// bucket is exact.
func (s *Server) seenBefore(ctx context.Context, q Query, sc scopeSpec, doms, ids []string) (siteAssets, error) {
	search := func(assets obj) (siteAssets, error) {
		sub := obj{}
		if len(ids) > 0 {
			sub["assets"] = assets
		}
		res, err := s.run(ctx, ask{cube: cubeAssetSites, spans: []span{{to: q.From}}, scope: sc, filters: []obj{uses, terms("referring_domain", doms)},
			body: obj{"size": 0, "aggs": obj{"sites": obj{"terms": obj{"field": "referring_domain", "size": len(doms), "include": doms}, "aggs": sub}}}})
		if err != nil {
			return siteAssets{}, err
		}
		return decodeSiteAssets(res)
	}
	out, err := search(obj{"terms": obj{"field": "asset_id", "size": beforeSize(len(ids))}})
	if err != nil {
		return out, err
	}
	for _, b := range out.Sites.Buckets {
		if b.Assets.Other > 0 {
			s.beforeFellBack.Add(1)
			return search(obj{"terms": obj{"field": "asset_id", "size": len(ids), "include": ids}})
		}
	}
	return out, nil
}

// siteAssets is the answer of the highlights' searches of sites and the
// assets used from each, decoded at once: up to 300 sites of 200 assets,
// which node's lazy decoding would decode again at every look.
type siteAssets struct {
	Sites struct {
		Buckets []struct {
			Key      string `json:"key"`
			DocCount int64  `json:"doc_count"`
			Assets   struct {
				Other   int64 `json:"sum_other_doc_count"`
				Buckets []struct {
					Key string `json:"key"`
				} `json:"buckets"`
			} `json:"assets"`
		} `json:"buckets"`
	} `json:"sites"`
}

func decodeSiteAssets(res node) (siteAssets, error) {
	var out siteAssets
	if raw, ok := res["aggregations"]; ok {
		if err := json.Unmarshal(raw, &out); err != nil {
			return out, fmt.Errorf("%w: decode answer: %v", ErrSearch, err)
		}
	}
	return out, nil
}

// firstSeen reports websites (not search engines, social networks, mail
// or the platform's app) that referred uses for the first time in the
// period, and assets used from a website for the first time, each with at
// least minSiteUses uses in the period. cur is the period's sites and
// their assets; before is the same restricted to earlier uses.
func (s *Server) firstSeen(cur, before siteAssets) []Highlight {
	seen := map[string]bool{}
	for _, b := range before.Sites.Buckets {
		seen[b.Key] = true
		for _, a := range b.Assets.Buckets {
			seen[b.Key+"\x00"+a.Key] = true
		}
	}
	var newSites []string
	assets := map[string]bool{}
	var count int64
	for _, b := range cur.Sites.Buckets {
		site := b.Key
		if s.channel(site) != ChannelWebsites {
			continue
		}
		if !seen[site] {
			newSites = append(newSites, site)
			count += b.DocCount
		}
		for _, a := range b.Assets.Buckets {
			if !seen[site+"\x00"+a.Key] {
				assets[a.Key] = true
			}
		}
	}
	var hs []Highlight
	if len(newSites) > 0 {
		sort.Strings(newSites)
		hs = append(hs, Highlight{Kind: "new_sites", Sites: newSites, Count: len(newSites), Cur: count})
	}
	if len(assets) > 0 {
		hs = append(hs, Highlight{Kind: "new_embeds", Count: len(assets)})
	}
	return hs
}
