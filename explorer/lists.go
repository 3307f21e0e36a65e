package explorer

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Count is one row of a breakdown: a key and its figure now and before.
type Count struct {
	Key     string   `json:"key"`
	Label   string   `json:"label,omitempty"`   // a display name where the key is a code
	Channel string   `json:"channel,omitempty"` // for referring sites
	Cur     float64  `json:"cur"`
	Prev    *float64 `json:"prev,omitempty"`
	// inexact: Cur came from a bucket that a shard may have left out of
	// its top list (doc_count_error_upper_bound above 0); complete
	// counts it.
	inexact bool
}

// counts merges a terms aggregation of the current period with the same
// of the previous one, in the current order; prev is nil without a
// comparison. Keys only in the previous top are left out. A key that is
// not in the previous list gets 0 there, which is its figure only when
// that list holds every key, and a key in either list has its bucket's
// count, which is its figure only when the bucket's error bound is 0
// (termsAgg asks for it): complete counts the others.
func counts(q Query, cur, prev node, label func(node) string) []Count {
	before := map[string]float64{}
	for _, b := range prev.buckets() {
		before[b.key()] = float64(b.count())
	}
	_, _, cmp := q.Previous()
	out := []Count{}
	for _, b := range cur.buckets() {
		c := Count{Key: b.key(), Cur: float64(b.count()), inexact: !b.exactCount()}
		if label != nil {
			c.Label = label(b)
		}
		if cmp {
			v := before[c.Key]
			c.Prev = &v
		}
		out = append(out, c)
	}
	return out
}

// rankedCounts is counts for rankings.
func rankedCounts(q Query, cur, prev []ranked) []Count {
	before := map[string]float64{}
	for _, r := range prev {
		before[r.key] = float64(r.count)
	}
	_, _, cmp := q.Previous()
	out := []Count{}
	for _, r := range cur {
		c := Count{Key: r.key, Cur: float64(r.count), inexact: r.inexact}
		if cmp {
			v := before[c.Key]
			c.Prev = &v
		}
		out = append(out, c)
	}
	return out
}

// listGap is a list whose rows' figures were taken from the periods' top
// lists: rows whose key is not in the previous list got 0 there, which
// is right only when the list holds every key with events, and a row's
// bucket may have missed a shard (Count.inexact; known says which
// previous figures the list vouches for).
type listGap struct {
	field string  // the list's key
	rows  []Count // the rows shown (the answer's own slice: complete sets the figures it counts)
	known func(key string) bool
}

// inTerms says which keys a terms aggregation's answer gives the figure
// of (termsAnswer.exact).
func inTerms(n node) func(string) bool { return exactTerms(n).exact }

// inRanking is inTerms for a ranking of n keys: fewer than n keys came
// back only when there were no more.
func inRanking(list []ranked, n int) func(string) bool {
	exact := map[string]bool{}
	for _, r := range list {
		exact[r.key] = !r.inexact
	}
	return func(k string) bool {
		if e, ok := exact[k]; ok {
			return e
		}
		return len(list) < n
	}
}

// complete counts exactly the figures of the rows of gaps that their
// top lists cannot vouch for: a previous figure whose key the previous
// list left out or may have undercounted, and a current figure whose
// bucket may have missed a shard. One search of a's scope, cube and
// filters, restricted to exactly those keys (so that no shard leaves one
// out), and none when every figure is known — the usual case, as the
// previous lists hold most keys of the current ones and small lists are
// complete on every shard. A list whose current figures changed is put
// in their order again.
func (s *Server) complete(ctx context.Context, q Query, a ask, gaps ...listGap) error {
	pf, pt, cmp := q.Previous()
	periods := []struct {
		name     string
		from, to time.Time
		unknown  func(g listGap, r Count) bool
	}{
		{"c", q.From, q.To, func(_ listGap, r Count) bool { return r.inexact }},
		{"p", pf, pt, func(g listGap, r Count) bool { return cmp && !g.known(r.Key) }},
	}
	aggs := obj{}
	var keyFilters []obj
	var spans []span
	asked := map[string]bool{}
	for _, p := range periods {
		var periodFilters []obj
		for i, g := range gaps {
			var keys []string
			for _, r := range g.rows {
				if p.unknown(g, r) {
					keys = append(keys, r.Key)
				}
			}
			if len(keys) == 0 {
				continue
			}
			name := p.name + strconv.Itoa(i)
			asked[name] = true
			aggs[name] = filterAgg(boolFilter(timeRange(p.from, p.to), terms(g.field, keys)),
				obj{"k": obj{"terms": obj{"field": g.field, "size": len(keys), "include": keys}}})
			periodFilters = append(periodFilters, terms(g.field, keys))
		}
		if len(periodFilters) > 0 {
			spans = append(spans, span{p.from, p.to})
			keyFilters = append(keyFilters, periodFilters...)
		}
	}
	if len(aggs) == 0 {
		return nil
	}
	// Only the documents of those keys are read.
	a.filters = append(append([]obj{}, a.filters...), obj{"bool": obj{"should": keyFilters, "minimum_should_match": 1}})
	a.spans = spans
	a.body = obj{"size": 0, "aggs": aggs}
	res, err := s.run(ctx, a)
	if err != nil {
		return err
	}
	for _, p := range periods {
		for i, g := range gaps {
			name := p.name + strconv.Itoa(i)
			if !asked[name] {
				continue
			}
			got := map[string]float64{}
			for _, b := range res.agg(name).sub("k").buckets() {
				got[b.key()] = float64(b.count())
			}
			for j := range g.rows {
				r := &g.rows[j]
				if !p.unknown(g, *r) {
					continue
				}
				v := got[r.Key]
				if p.name == "p" {
					r.Prev = &v
					continue
				}
				r.Cur, r.inexact = v, false
				s.listRecounts.Add(1)
			}
		}
	}
	for i, g := range gaps {
		if asked["c"+strconv.Itoa(i)] {
			sort.SliceStable(g.rows, func(x, y int) bool { return g.rows[x].Cur > g.rows[y].Cur })
		}
	}
	return nil
}

// termsAgg is a terms aggregation that says, for each bucket, by how much
// a shard that left the key out of its top list may have undercounted it
// (see counts).
func termsAgg(field string, size int, sub obj) obj {
	a := obj{"terms": obj{"field": field, "size": size, "show_term_doc_count_error": true}}
	if sub != nil {
		a["aggs"] = sub
	}
	return a
}

// assetMeta is the newest document's catalog fields of a bucket's asset.
func assetMeta() obj {
	return obj{"top_hits": obj{"size": 1, "_source": obj{"includes": []string{"asset", "asset_id"}}, "sort": []obj{{"event_time": obj{"order": "desc"}}}}}
}

// AssetRow is one asset of the top list.
type AssetRow struct {
	AssetID    string `json:"asset_id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Collection string `json:"collection"`
	Views      int64  `json:"views"`
	Downloads  int64  `json:"downloads"`
	Total      int64  `json:"total"`
	Rank       int    `json:"rank,omitempty"` // 1-based; 0 when not in the top list now (dropped)
	// The comparison period; absent without one.
	PrevViews     *int64 `json:"prev_views,omitempty"`
	PrevDownloads *int64 `json:"prev_downloads,omitempty"`
	PrevTotal     *int64 `json:"prev_total,omitempty"`
	PrevRank      int    `json:"prev_rank,omitempty"` // 0 when not in the previous top list
	New           bool   `json:"new,omitempty"`       // in the top list now, not before
}

// TopAssets is the answer of /api/assets.
type TopAssets struct {
	Period  Period     `json:"period"`
	Assets  []AssetRow `json:"assets"`
	Dropped []AssetRow `json:"dropped"` // in the previous top list, not in this one
}

type assetFig struct {
	views, downloads int64
	site             string // where most uses came from (when asked)
	// siteUnasked: the main site was asked but not counted (see
	// topAssetsAtOnce); mainSites counts it.
	siteUnasked bool
}

func figures(b node) assetFig {
	f := assetFig{views: b.sub("views").count(), downloads: b.sub("downloads").count()}
	f.site = mainSite(b, f.views+f.downloads)
	return f
}

// mainSite is the site of an asset's bucket with a "site" terms
// aggregation that brought most of its uses, "mostly from": only when one
// site brought a good share of them.
func mainSite(b node, uses int64) string {
	if sb := b.sub("site").buckets(); len(sb) > 0 && float64(sb[0].count()) >= 0.3*float64(uses) {
		return sb[0].key()
	}
	return ""
}

// figureAggs are the sub-aggregations of an asset's bucket that make its
// figures; withSite adds its main site, which only the assets-by-site
// cube can tell.
func figureAggs(withSite bool) obj {
	sub := obj{"views": filterAgg(term("event_type", "view"), nil), "downloads": filterAgg(term("event_type", "download"), nil)}
	if withSite {
		sub["site"] = siteAgg()
	}
	return sub
}

// mainSites returns the main site (see mainSite) of each of the given
// assets in the period, counted as assetFigures counts it (an asset's
// bucket holds the same documents whatever other assets the search is
// restricted to): for the few assets of the highlights that show one.
func (s *Server) mainSites(ctx context.Context, q Query, sc scopeSpec, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	res, err := s.run(ctx, ask{cube: cubeAssetSites, spans: []span{{q.From, q.To}}, scope: sc, filters: []obj{uses, terms("asset_id", ids)},
		body: obj{"size": 0, "aggs": obj{"ids": obj{"terms": obj{"field": "asset_id", "size": len(ids), "include": ids}, "aggs": obj{"site": siteAgg()}}}}})
	if err != nil {
		return nil, err
	}
	for _, b := range res.agg("ids").buckets() {
		out[b.key()] = mainSite(b, b.count())
	}
	return out, nil
}

func siteAgg() obj {
	return obj{"terms": obj{"field": "referring_domain", "size": 1, "shard_size": 100}}
}

// topAssets returns the n assets with the most uses in the period and in the
// comparison period. Events are in daily indices and rollups in monthly
// ones, so each shard reports many more than n candidates (shard_size)
// for the merged ranking to be right.
//
// It returns the figures of the listed assets too (assetFigures).
func (s *Server) topAssets(ctx context.Context, q Query, sc scopeSpec, n int, withSite bool) (curIDs, prevIDs []string, cur, prev map[string]assetFig, err error) {
	if a := (ask{cube: cubeAssets, spans: periodSpans(q), scope: sc, filters: []obj{uses}}); s.figuresAtOnce && !s.fromTop(ctx, a) {
		return s.topAssetsAtOnce(ctx, q, a, n, withSite)
	}
	// Ranked from a top cube, the candidates' figures are their exact
	// counts: asked once, they serve both.
	var candCur, candPrev map[string]assetFig
	recount := func(ids []string) (map[string]int64, map[string]int64, error) {
		var err error
		if candCur, candPrev, err = s.assetFigures(ctx, q, sc, ids, withSite); err != nil {
			return nil, nil, err
		}
		uses := func(m map[string]assetFig) map[string]int64 {
			out := map[string]int64{}
			for id, f := range m {
				out[id] = f.views + f.downloads
			}
			return out
		}
		return uses(candCur), uses(candPrev), nil
	}
	c, p, err := s.rank(ctx, q, ask{cube: cubeAssets, spans: periodSpans(q), scope: sc, filters: []obj{uses}}, "asset_id", n, max(10*n, 200), 2*n+10, recount)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for _, r := range c {
		curIDs = append(curIDs, r.key)
	}
	for _, r := range p {
		prevIDs = append(prevIDs, r.key)
	}
	listed := union(curIDs, prevIDs)
	if candCur == nil || !hasAll(candCur, candPrev, listed) {
		cur, prev, err = s.assetFigures(ctx, q, sc, listed, withSite)
		return curIDs, prevIDs, cur, prev, err
	}
	// Only the listed assets: the others were candidates.
	cur, prev = map[string]assetFig{}, map[string]assetFig{}
	for _, id := range listed {
		if f, ok := candCur[id]; ok {
			cur[id] = f
		}
		if f, ok := candPrev[id]; ok {
			prev[id] = f
		}
	}
	return curIDs, prevIDs, cur, prev, nil
}

// rankAtLeast is the shortest ranking of assets that topAssetsAtOnce
// asks for: the highlights' (movers among the 40 most used of each
// period), so that the page's top assets, asked at the same moment with
// the same search, share it (see store.search).
const rankAtLeast = 40

// atOnceSizes are the size and shard_size of topAssetsAtOnce's ranking of
// rn assets: twice as many as ranked, so that an asset listed in one
// period is usually among the other period's too (and its figure there
// known), and each shard's ten times as many, as rank asks.
var atOnceSizes = func(rn int) (size, shardSize int) { return 2 * rn, max(10*rn, 200) }

// topAssetsAtOnce is topAssets from the full cube, with the listed
// assets' figures taken from the ranking search itself where it proves
// them exact, rather than asked in a second search after it.
//
// A terms aggregation merges each shard's top shard_size keys, so a
// bucket's count may miss a shard that did not report it; with
// show_term_doc_count_error the bucket says by how much at most
// (doc_count_error_upper_bound: 0 when every shard reported it or had
// fewer keys than it was asked for, i.e. reported all). A listed asset's
// figure in a period is exact when its bucket there has an error bound of
// 0, or when it has no bucket and the period's list left no events out
// (sum_other_doc_count 0: it had none). When every listed asset's figures
// are exact in both periods, the answer is the ranking search's;
// otherwise the listed assets are counted by assetFigures, as before,
// from the same ranking. The ranking itself is the full cube's of rank
// (the first n of a longer list, ordered alike). The main site (withSite)
// is then left to mainSites, for the few assets that need it: the figures
// carry siteUnasked.
func (s *Server) topAssetsAtOnce(ctx context.Context, q Query, a ask, n int, withSite bool) (curIDs, prevIDs []string, cur, prev map[string]assetFig, err error) {
	rn := max(n, rankAtLeast)
	size, shardSize := atOnceSizes(rn)
	a.body = obj{"size": 0, "aggs": perPeriod(q, obj{"top": obj{
		"terms": obj{"field": "asset_id", "size": size, "shard_size": shardSize, "show_term_doc_count_error": true},
		"aggs":  figureAggs(false)}})}
	res, err := s.run(ctx, a)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pc, pp := exactTerms(res.agg("cur").sub("top")), exactTerms(res.agg("prev").sub("top"))
	for _, b := range pc.list[:min(n, len(pc.list))] {
		curIDs = append(curIDs, b.key())
	}
	for _, b := range pp.list[:min(n, len(pp.list))] {
		prevIDs = append(prevIDs, b.key())
	}
	listed := union(curIDs, prevIDs)
	_, _, cmp := q.Previous()
	for _, id := range listed {
		if !pc.exact(id) || cmp && !pp.exact(id) {
			s.atOnceFellBack.Add(1)
			s.log.Debug("top assets: figures not proven exact by the ranking search; counting them apart", zap.String("asset", id), zap.Int("n", n))
			cur, prev, err = s.assetFigures(ctx, q, a.scope, listed, withSite)
			return curIDs, prevIDs, cur, prev, err
		}
	}
	s.atOnce.Add(1)
	cur, prev = map[string]assetFig{}, map[string]assetFig{}
	for _, id := range listed {
		if b, ok := pc.bucket[id]; ok {
			f := figures(b)
			f.siteUnasked = withSite
			cur[id] = f
		}
		if b, ok := pp.bucket[id]; ok {
			prev[id] = figures(b)
		}
	}
	return curIDs, prevIDs, cur, prev, nil
}

// termsAnswer is a terms aggregation's answer asked with
// show_term_doc_count_error, by key.
type termsAnswer struct {
	list   []node
	bucket map[string]node
	all    bool // no events were left out: a key without a bucket had none
}

func exactTerms(n node) termsAnswer {
	t := termsAnswer{list: n.buckets(), bucket: map[string]node{}, all: n.num("sum_other_doc_count") == 0}
	for _, b := range t.list {
		t.bucket[b.key()] = b
	}
	return t
}

// exact reports whether the answer gives key's exact count: its bucket
// missed no shard, or it has none and nothing was left out.
func (t termsAnswer) exact(key string) bool {
	if b, ok := t.bucket[key]; ok {
		return b.exactCount()
	}
	return t.all
}

// hasAll reports whether the figures of every id were counted (an id
// without uses in either period has none).
func hasAll(cur, prev map[string]assetFig, ids []string) bool {
	for _, id := range ids {
		_, c := cur[id]
		_, p := prev[id]
		if !c && !p {
			return false
		}
	}
	return true
}

// assetFigures returns exact figures of the given assets in each period:
// the terms aggregation is restricted to exactly these ids, so no shard
// leaves one out. withSite adds the main referring site.
func (s *Server) assetFigures(ctx context.Context, q Query, sc scopeSpec, ids []string, withSite bool) (cur, prev map[string]assetFig, err error) {
	cur, prev = map[string]assetFig{}, map[string]assetFig{}
	if len(ids) == 0 {
		return cur, prev, nil
	}
	sub := figureAggs(withSite)
	c := cubeAssets
	if withSite {
		c = cubeAssetSites
	}
	agg := obj{"ids": obj{"terms": obj{"field": "asset_id", "size": len(ids), "include": ids}, "aggs": sub}}
	res, err := s.run(ctx, ask{cube: c, spans: periodSpans(q), scope: sc, filters: []obj{uses, terms("asset_id", ids)},
		body: obj{"size": 0, "aggs": perPeriod(q, agg)}})
	if err != nil {
		return nil, nil, err
	}
	for _, b := range res.agg("cur").sub("ids").buckets() {
		cur[b.key()] = figures(b)
	}
	for _, b := range res.agg("prev").sub("ids").buckets() {
		prev[b.key()] = figures(b)
	}
	return cur, prev, nil
}

func union(a, b []string) []string {
	out := append([]string{}, a...)
	for _, x := range b {
		if _, ok := indexOf(out, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

func (s *Server) handleAssets(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	sc := scopeOf(p, q, false)
	curIDs, prevIDs, cur, prev, err := s.topAssets(r.Context(), q, sc, q.Limit, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, _, cmp := q.Previous()
	prevRank := map[string]int{}
	for i, id := range prevIDs {
		prevRank[id] = i + 1
	}
	shown := append([]string{}, curIDs...)
	if cmp {
		for _, id := range prevIDs {
			if _, ok := indexOf(curIDs, id); !ok {
				shown = append(shown, id)
			}
		}
	}
	titles, err := s.assetTitles(r.Context(), q, sc, shown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	row := func(id string, rank int) AssetRow {
		c, b := cur[id], prev[id]
		meta := titles[id]
		a := AssetRow{AssetID: id, Title: meta.path("asset.title"), Type: meta.path("asset.type"), Collection: meta.path("asset.collection"),
			Views: c.views, Downloads: c.downloads, Total: c.views + c.downloads, Rank: rank}
		if cmp {
			pv, pd, pt := b.views, b.downloads, b.views+b.downloads
			a.PrevViews, a.PrevDownloads, a.PrevTotal = &pv, &pd, &pt
			a.PrevRank = prevRank[id]
			a.New = rank > 0 && a.PrevRank == 0
		}
		return a
	}
	out := TopAssets{Period: periodOf(q), Assets: []AssetRow{}, Dropped: []AssetRow{}}
	for i, id := range curIDs {
		out.Assets = append(out.Assets, row(id, i+1))
	}
	for _, id := range shown[len(curIDs):] {
		out.Dropped = append(out.Dropped, row(id, 0))
	}
	s.respond(w, r, q, out, map[string]table{"assets": assetTable(out)})
}

func indexOf(xs []string, x string) (int, bool) {
	for i, y := range xs {
		if y == x {
			return i, true
		}
	}
	return -1, false
}

func assetTable(t TopAssets) table {
	tab := table{header: []string{"rank", "asset_id", "title", "type", "collection", "views", "downloads", "total", "prev_total", "change_pct", "prev_rank", "status"}}
	add := func(a AssetRow, status string) {
		var pt *float64
		if a.PrevTotal != nil {
			v := float64(*a.PrevTotal)
			pt = &v
		}
		rank, prevRank := "", ""
		if a.Rank > 0 {
			rank = strconv.Itoa(a.Rank)
		}
		if a.PrevRank > 0 {
			prevRank = strconv.Itoa(a.PrevRank)
		}
		tab.rows = append(tab.rows, []string{rank, a.AssetID, a.Title, a.Type, a.Collection, itoa(a.Views), itoa(a.Downloads), itoa(a.Total),
			prevCell(pt), change(float64(a.Total), pt), prevRank, status})
	}
	for _, a := range t.Assets {
		status := ""
		if a.New {
			status = "new"
		}
		add(a, status)
	}
	for _, a := range t.Dropped {
		add(a, "dropped")
	}
	return tab
}

// Sources is the answer of /api/sources: where uses come from.
type Sources struct {
	Period   Period  `json:"period"`
	Channels []Count `json:"channels"`
	Sites    []Count `json:"sites"`
	Pages    []Count `json:"pages"`
}

// sourcesSites is how many referring sites /api/sources asks for (the
// list shows at most q.Limit of them).
var sourcesSites = 500

func (s *Server) handleSources(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	sub := obj{
		"sites":  termsAgg("referring_domain", sourcesSites, nil),
		"direct": obj{"missing": obj{"field": "referring_domain"}},
	}
	sc := scopeOf(p, q, false)
	var res node
	var curPages, prevPages []ranked
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() (err error) {
		res, err = s.run(ctx, ask{cube: cubeSites, spans: periodSpans(q), scope: sc, filters: []obj{uses},
			body: obj{"size": 0, "aggs": perPeriod(q, sub)}})
		return err
	})
	g.Go(func() (err error) {
		// Pages are many: each shard reports its 2,000 most used, so that
		// the merged top list is exact unless a shard has more pages than
		// that with uses near the list's end.
		curPages, prevPages, err = s.rank(ctx, q, ask{cube: cubeReferrers, spans: periodSpans(q), scope: sc, filters: []obj{uses}}, "referrer", q.Limit, 2000, 4*q.Limit+20, nil)
		return err
	})
	if err := g.Wait(); err != nil {
		s.fail(w, r, err)
		return
	}
	cur, prev := res.agg("cur"), res.agg("prev")
	_, _, cmp := q.Previous()
	// Channels are summed from the sites when every site with uses is
	// listed (the usual case). A period with more referring domains
	// than sourcesSites is counted by filters that classify every
	// domain, in one more search: they cost about 100 ms more than the
	// sum, so only where the sum would leave sites out.
	var chans node
	if cur.sub("sites").num("sum_other_doc_count") > 0 || prev.sub("sites").num("sum_other_doc_count") > 0 {
		var err error
		chans, err = s.run(r.Context(), ask{cube: cubeSites, spans: periodSpans(q), scope: sc, filters: []obj{uses},
			body: obj{"size": 0, "aggs": perPeriod(q, obj{"channels": obj{"filters": obj{"filters": s.channelFilters()}}})}})
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	byChannel := func(n node, period string) map[string]float64 {
		m := map[string]float64{ChannelDirect: float64(n.sub("direct").count())}
		if chans == nil {
			for _, b := range n.sub("sites").buckets() {
				m[s.channel(b.key())] += float64(b.count())
			}
			return m
		}
		for _, ch := range []string{ChannelSearch, ChannelSocial, ChannelWebsites, ChannelApp, ChannelEmail} {
			m[ch] = float64(chans.agg(period).sub("channels").sub("buckets").sub(ch).count())
		}
		return m
	}
	cc, pc := byChannel(cur, "cur"), byChannel(prev, "prev")
	out := Sources{Period: periodOf(q), Channels: []Count{}}
	for _, ch := range []string{ChannelDirect, ChannelSearch, ChannelSocial, ChannelWebsites, ChannelApp, ChannelEmail} {
		c := Count{Key: ch, Cur: cc[ch]}
		if cmp {
			v := pc[ch]
			c.Prev = &v
		}
		if c.Cur > 0 || (c.Prev != nil && *c.Prev > 0) {
			out.Channels = append(out.Channels, c)
		}
	}
	sites := counts(q, cur.sub("sites"), prev.sub("sites"), nil)
	if len(sites) > q.Limit {
		sites = sites[:q.Limit]
	}
	for i := range sites {
		sites[i].Channel = s.channel(sites[i].Key)
	}
	out.Sites = sites
	out.Pages = rankedCounts(q, curPages, prevPages)
	// Rows that were not in the previous period's lists: their figure
	// then, counted (two cubes, so two searches, side by side).
	g, ctx = errgroup.WithContext(r.Context())
	g.Go(func() error {
		return s.complete(ctx, q, ask{cube: cubeSites, scope: sc, filters: []obj{uses}},
			listGap{field: "referring_domain", rows: out.Sites, known: inTerms(prev.sub("sites"))})
	})
	g.Go(func() error {
		return s.complete(ctx, q, ask{cube: cubeReferrers, scope: sc, filters: []obj{uses}},
			listGap{field: "referrer", rows: out.Pages, known: inRanking(prevPages, q.Limit)})
	})
	if err := g.Wait(); err != nil {
		s.fail(w, r, err)
		return
	}
	chTable := countTable("channel", out.Channels)
	siteTable := table{header: []string{"site", "channel", "count", "prev_count", "change_pct"}}
	for _, c := range out.Sites {
		siteTable.rows = append(siteTable.rows, []string{c.Key, c.Channel, ftoa(c.Cur), prevCell(c.Prev), change(c.Cur, c.Prev)})
	}
	s.respond(w, r, q, out, map[string]table{"channels": chTable, "sites": siteTable, "pages": countTable("page", out.Pages)})
}

// Places is the answer of /api/places.
type Places struct {
	Period    Period  `json:"period"`
	Countries []Count `json:"countries"` // key: ISO 3166-1 alpha-2; label: English name
	Cities    []Count `json:"cities"`    // key: city; label: its country's ISO code
	Unknown   Pair    `json:"unknown"`   // uses whose place is not known
}

func (s *Server) handlePlaces(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	sub := obj{
		"countries": termsAgg("geo.country_iso", 250, obj{"name": termsAgg("geo.country", 1, nil)}),
		"cities": obj{"terms": obj{"field": "geo.city", "size": max(q.Limit, 50), "shard_size": listShardSize(2000), "show_term_doc_count_error": true},
			"aggs": obj{"cc": termsAgg("geo.country_iso", 1, nil)}},
		"unknown": obj{"missing": obj{"field": "geo.country_iso"}},
	}
	a := ask{cube: cubePlaces, spans: periodSpans(q), scope: scopeOf(p, q, false), filters: []obj{uses},
		body: obj{"size": 0, "aggs": perPeriod(q, sub)}}
	res, err := s.run(r.Context(), a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cur, prev := res.agg("cur"), res.agg("prev")
	first := func(n node, name string) string {
		if b := n.sub(name).buckets(); len(b) > 0 {
			return b[0].key()
		}
		return ""
	}
	out := Places{Period: periodOf(q),
		Countries: counts(q, cur.sub("countries"), prev.sub("countries"), func(b node) string { return first(b, "name") }),
		Cities:    counts(q, cur.sub("cities"), prev.sub("cities"), func(b node) string { return first(b, "cc") }),
		Unknown:   pairOf(q, float64(cur.sub("unknown").count()), float64(prev.sub("unknown").count())),
	}
	if len(out.Cities) > q.Limit {
		out.Cities = out.Cities[:q.Limit]
	}
	if err := s.complete(r.Context(), q, a,
		listGap{field: "geo.country_iso", rows: out.Countries, known: inTerms(prev.sub("countries"))},
		listGap{field: "geo.city", rows: out.Cities, known: inTerms(prev.sub("cities"))}); err != nil {
		s.fail(w, r, err)
		return
	}
	ct := table{header: []string{"country_iso", "country", "count", "prev_count", "change_pct"}}
	for _, c := range out.Countries {
		ct.rows = append(ct.rows, []string{c.Key, c.Label, ftoa(c.Cur), prevCell(c.Prev), change(c.Cur, c.Prev)})
	}
	cityT := table{header: []string{"city", "country_iso", "count", "prev_count", "change_pct"}}
	for _, c := range out.Cities {
		cityT.rows = append(cityT.rows, []string{c.Key, c.Label, ftoa(c.Cur), prevCell(c.Prev), change(c.Cur, c.Prev)})
	}
	s.respond(w, r, q, out, map[string]table{"countries": ct, "cities": cityT})
}

// techKeys is how many browsers and systems /api/tech asks for, whatever
// the list's length: all there are, in practice.
const techKeys = 100

// first is the first n of xs.
func first(xs []Count, n int) []Count { return xs[:min(n, len(xs))] }

// Tech is the answer of /api/tech: how assets are watched.
type Tech struct {
	Period   Period  `json:"period"`
	Devices  []Count `json:"devices"`
	Browsers []Count `json:"browsers"`
	Systems  []Count `json:"systems"`
	Delivery []Count `json:"delivery"` // views, downloads (full), partial (range requests)
	Audience []Count `json:"audience"` // people, automated: uses by each, whatever the bots switch says
}

func (s *Server) handleTech(w http.ResponseWriter, r *http.Request, p Principal, q Query) {
	shown := obj{"match_all": obj{}}
	if !q.Bots {
		shown = term("bot", false)
	}
	notPartial := not(term("status", 206))
	sub := obj{
		"people": filterAgg(boolFilter(term("bot", false), uses), nil),
		"bots":   filterAgg(boolFilter(term("bot", true), uses), nil),
		"shown": filterAgg(shown, obj{
			"uses": filterAgg(uses, obj{
				"devices": termsAgg("ua.device", 10, nil),
				// Browsers and systems are few: all of them (up to 100),
				// so that the previous period's list holds every row's.
				"browsers": termsAgg("ua.browser", techKeys, nil),
				"systems":  termsAgg("ua.os", techKeys, nil),
			}),
			"delivery": obj{"filters": obj{"filters": obj{
				"views":     boolFilter(term("event_type", "view"), notPartial),
				"downloads": boolFilter(term("event_type", "download"), notPartial),
				"partial":   term("status", 206),
			}}},
		}),
	}
	res, err := s.run(r.Context(), ask{cube: cubeTech, spans: periodSpans(q), scope: scopeOf(p, q, true),
		body: obj{"size": 0, "aggs": perPeriod(q, sub)}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cur, prev := res.agg("cur"), res.agg("prev")
	cu, pu := cur.sub("shown").sub("uses"), prev.sub("shown").sub("uses")
	named := func(keys []string, get func(n node, k string) float64) []Count {
		var out []Count
		for _, k := range keys {
			out = append(out, Count{Key: k, Cur: get(cur, k), Prev: pairOf(q, 0, get(prev, k)).Prev})
		}
		return out
	}
	out := Tech{Period: periodOf(q),
		Devices:  counts(q, cu.sub("devices"), pu.sub("devices"), nil),
		Browsers: first(counts(q, cu.sub("browsers"), pu.sub("browsers"), nil), q.Limit),
		Systems:  first(counts(q, cu.sub("systems"), pu.sub("systems"), nil), q.Limit),
		Delivery: named([]string{"views", "downloads", "partial"}, func(n node, k string) float64 {
			return float64(n.sub("shown").sub("delivery").keyed()[k].count())
		}),
		Audience: named([]string{"people", "bots"}, func(n node, k string) float64 { return float64(n.sub(k).count()) }),
	}
	if err := s.complete(r.Context(), q, ask{cube: cubeTech, scope: scopeOf(p, q, false), filters: []obj{uses}},
		listGap{field: "ua.device", rows: out.Devices, known: inTerms(pu.sub("devices"))},
		listGap{field: "ua.browser", rows: out.Browsers, known: inTerms(pu.sub("browsers"))},
		listGap{field: "ua.os", rows: out.Systems, known: inTerms(pu.sub("systems"))}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, q, out, map[string]table{
		"devices": countTable("device", out.Devices), "browsers": countTable("browser", out.Browsers), "systems": countTable("os", out.Systems),
		"delivery": countTable("delivery", out.Delivery), "audience": countTable("audience", out.Audience),
	})
}
