package explorer_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
)

// expected is what the fixture holds, counted here from the events.
type expected struct {
	views, downloads, bytes int64
	assets                  map[string][2]int64 // views, downloads
	sites, countries        map[string]int64
	direct                  int64
}

func count(tenant string, from, to time.Time, bots bool) expected {
	x := expected{assets: map[string][2]int64{}, sites: map[string]int64{}, countries: map[string]int64{}}
	for _, e := range fixture {
		if tenant != "" && e.Tenant != tenant || e.EventTime.Before(from) || !e.EventTime.Before(to) || e.Bot && !bots {
			continue
		}
		x.bytes += e.Bytes
		if e.EventType != event.TypeView && e.EventType != event.TypeDownload {
			continue
		}
		a := x.assets[e.AssetID]
		if e.EventType == event.TypeView {
			x.views++
			a[0]++
		} else {
			x.downloads++
			a[1]++
		}
		x.assets[e.AssetID] = a
		if e.ReferringDomain == "" {
			x.direct++
		} else {
			x.sites[e.ReferringDomain]++
		}
		if e.Geo.CountryISO != "" {
			x.countries[e.Geo.CountryISO]++
		}
	}
	return x
}

// top ranks assets as OpenSearch's terms aggregation does: by uses, then id.
func top(x expected, n int) []string {
	total := map[string]int{}
	for id, a := range x.assets {
		total[id] = int(a[0] + a[1])
	}
	ids := keysByCount(total)
	if len(ids) > n {
		ids = ids[:n]
	}
	return ids
}

func TestSummaryMatchesTheWorkload(t *testing.T) { onBackends(t, testSummaryMatchesTheWorkload) }

func testSummaryMatchesTheWorkload(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	for _, user := range []string{"a", "admin"} {
		t.Run(user, func(t *testing.T) {
			tenant := tenantA
			if user == "admin" {
				tenant = ""
			}
			var s explorer.Summary
			if code := get(t, ts, user, "/api/summary?period=7d&compare=previous", &s); code != 200 {
				t.Fatalf("status %d", code)
			}
			cur, prev := count(tenant, half, now.Truncate(24*time.Hour), false), count(tenant, start, half, false)
			if s.Period.From != "2026-11-23" || s.Period.To != "2026-11-29" || s.Period.PrevFrom != "2026-11-16" || s.Period.PrevTo != "2026-11-22" {
				t.Fatalf("period %+v", s.Period)
			}
			checkPair(t, "views", s.Cards["views"], cur.views, prev.views)
			checkPair(t, "downloads", s.Cards["downloads"], cur.downloads, prev.downloads)
			checkPair(t, "bytes", s.Cards["bytes"], cur.bytes, prev.bytes)
			checkPair(t, "sites", s.Cards["sites"], int64(len(cur.sites)), int64(len(prev.sites)))
			if len(s.Series) != 7 || len(s.Prev) != 7 || s.Interval != "day" {
				t.Fatalf("series %d/%d points by %s", len(s.Series), len(s.Prev), s.Interval)
			}
			var sum int64
			for _, p := range s.Series {
				sum += p.Views
			}
			if sum != cur.views {
				t.Fatalf("daily views add up to %d, want %d", sum, cur.views)
			}
			if s.Freshness.Newest == nil || s.Freshness.Newest.Before(half) {
				t.Fatalf("freshness %+v", s.Freshness)
			}
		})
	}
}

func checkPair(t *testing.T, name string, p explorer.Pair, cur, prev int64) {
	t.Helper()
	if int64(p.Cur) != cur || p.Prev == nil || int64(*p.Prev) != prev {
		got := "none"
		if p.Prev != nil {
			got = fmt.Sprint(*p.Prev)
		}
		t.Fatalf("%s: %v (before %s), want %d (before %d)", name, p.Cur, got, cur, prev)
	}
}

func TestTopAssetsWeekOverWeek(t *testing.T) { onBackends(t, testTopAssetsWeekOverWeek) }

func testTopAssetsWeekOverWeek(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	var got explorer.TopAssets
	if code := get(t, ts, "a", "/api/assets?period=7d&limit=10", &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	cur, prev := count(tenantA, half, now.Truncate(24*time.Hour), false), count(tenantA, start, half, false)
	want, wantPrev := top(cur, 10), top(prev, 10)
	if len(got.Assets) != len(want) {
		t.Fatalf("%d assets, want %d", len(got.Assets), len(want))
	}
	prevRank := map[string]int{}
	for i, id := range wantPrev {
		prevRank[id] = i + 1
	}
	for i, a := range got.Assets {
		c, p := cur.assets[want[i]], prev.assets[want[i]]
		if a.AssetID != want[i] || a.Views != c[0] || a.Downloads != c[1] || *a.PrevTotal != p[0]+p[1] || a.Rank != i+1 ||
			a.PrevRank != prevRank[a.AssetID] || a.New != (prevRank[a.AssetID] == 0) {
			t.Errorf("row %d: %+v (prev total %d), want %s views %d downloads %d before %d rank before %d", i, a, *a.PrevTotal, want[i], c[0], c[1], p[0]+p[1], prevRank[want[i]])
		}
		if owner[a.AssetID] != tenantA {
			t.Errorf("asset %s belongs to %s", a.AssetID, owner[a.AssetID])
		}
		if w := catalogOf(a.AssetID); a.Title != w.Title || a.Type != w.Type || a.Collection != w.Collection {
			t.Errorf("asset %s is %q (%s, %q), want %+v as its events say", a.AssetID, a.Title, a.Type, a.Collection, w)
		}
	}
	var dropped []string
	for _, id := range wantPrev {
		if _, ok := indexOf(want, id); !ok {
			dropped = append(dropped, id)
		}
	}
	if len(got.Dropped) != len(dropped) {
		t.Fatalf("dropped %+v, want %v", got.Dropped, dropped)
	}
	for i, a := range got.Dropped {
		c := cur.assets[a.AssetID]
		if a.AssetID != dropped[i] || a.Total != c[0]+c[1] || a.PrevRank != prevRank[a.AssetID] || a.Title != catalogOf(a.AssetID).Title {
			t.Errorf("dropped %d: %+v, want %s (%q) with %d uses now", i, a, dropped[i], catalogOf(dropped[i]).Title, c[0]+c[1])
		}
	}
}

// catalogOf is the catalog entry the fixture's events carry for asset id
// (empty for an asset the catalog does not know); it is the same in every
// event of the asset.
func catalogOf(id string) event.Asset {
	for _, e := range fixture {
		if e.AssetID == id {
			return e.Asset
		}
	}
	return event.Asset{}
}

func indexOf(xs []string, x string) (int, bool) {
	for i, y := range xs {
		if y == x {
			return i, true
		}
	}
	return -1, false
}

func TestSourcesAndPlaces(t *testing.T) { onBackends(t, testSourcesAndPlaces) }

func testSourcesAndPlaces(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	cur, prev := count(tenantA, half, now.Truncate(24*time.Hour), false), count(tenantA, start, half, false)
	var src explorer.Sources
	if code := get(t, ts, "a", "/api/sources?period=7d&limit=100", &src); code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, s := range src.Sites {
		if int64(s.Cur) != cur.sites[s.Key] || int64(*s.Prev) != prev.sites[s.Key] {
			t.Errorf("site %s: %v/%v, want %d/%d", s.Key, s.Cur, *s.Prev, cur.sites[s.Key], prev.sites[s.Key])
		}
	}
	if len(src.Sites) != min(100, len(cur.sites)) {
		t.Errorf("%d sites, want %d", len(src.Sites), len(cur.sites))
	}
	var total float64
	for _, c := range src.Channels {
		total += c.Cur
		if c.Key == explorer.ChannelDirect && int64(c.Cur) != cur.direct {
			t.Errorf("direct %v, want %d", c.Cur, cur.direct)
		}
	}
	if int64(total) != cur.views+cur.downloads {
		t.Errorf("channels add up to %v, want %d", total, cur.views+cur.downloads)
	}
	var pl explorer.Places
	if code := get(t, ts, "a", "/api/places?period=7d", &pl); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(pl.Countries) != len(cur.countries) {
		t.Fatalf("%d countries, want %d", len(pl.Countries), len(cur.countries))
	}
	for _, c := range pl.Countries {
		if int64(c.Cur) != cur.countries[c.Key] || int64(*c.Prev) != prev.countries[c.Key] || c.Label == "" {
			t.Errorf("country %s (%s): %v/%v, want %d/%d", c.Key, c.Label, c.Cur, *c.Prev, cur.countries[c.Key], prev.countries[c.Key])
		}
	}
}

// TestChannelsCountEveryReferringDomain: every channel's figure, in both
// periods, for a customer and an admin, is the count of the events whose
// referring domain channel classifies so, computed from the generated
// events, also when the period has more referring domains than the sites
// /api/sources lists (3 here): the channels must not be summed from the
// listed sites only.
func TestChannelsCountEveryReferringDomain(t *testing.T) {
	onBackends(t, testChannelsCountEveryReferringDomain)
}

func testChannelsCountEveryReferringDomain(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	for _, sites := range []int{500, 3} {
		restore := explorer.SetSourcesSites(sites)
		for _, user := range []string{"a", "admin"} {
			tenant := tenantA
			if user == "admin" {
				tenant = ""
			}
			cur, prev := count(tenant, half, now.Truncate(24*time.Hour), false), count(tenant, start, half, false)
			if len(cur.sites) <= sites && sites < 500 {
				t.Fatalf("%d referring domains for %s: the case needs more than %d", len(cur.sites), user, sites)
			}
			byChannel := func(x expected) map[string]int64 {
				m := map[string]int64{explorer.ChannelDirect: x.direct}
				for d, n := range x.sites {
					m[explorer.Channel([]string{"app.example.com"}, d)] += n
				}
				return m
			}
			wantCur, wantPrev := byChannel(cur), byChannel(prev)
			var src explorer.Sources
			if code := get(t, ts, user, "/api/sources?period=7d", &src); code != 200 {
				t.Fatalf("status %d", code)
			}
			got := map[string]bool{}
			for _, ch := range src.Channels {
				got[ch.Key] = true
				prev := -1.0 // none
				if ch.Prev != nil {
					prev = *ch.Prev
				}
				if int64(ch.Cur) != wantCur[ch.Key] || int64(prev) != wantPrev[ch.Key] {
					t.Errorf("sites %d, %s, channel %s: %v/%v, want %d/%d", sites, user, ch.Key, ch.Cur, prev, wantCur[ch.Key], wantPrev[ch.Key])
				}
			}
			for ch, n := range wantCur {
				if n > 0 && !got[ch] {
					t.Errorf("sites %d, %s: channel %s missing (%d uses)", sites, user, ch, n)
				}
			}
		}
		restore()
	}
}

// TestTenantIsolation asks every endpoint, as customer A, with every
// parameter that could widen the scope, and checks that nothing of B's
// (or anyone else's) comes back.
func TestTenantIsolation(t *testing.T) { onBackends(t, testTenantIsolation) }

func testTenantIsolation(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	var bAsset string
	for id, tn := range owner {
		if tn == tenantB && count(tenantB, start, now, true).assets[id] != [2]int64{} {
			bAsset = id
			break
		}
	}
	paths := []string{"/api/summary", "/api/assets", "/api/sources", "/api/places", "/api/tech", "/api/highlights", "/api/tenants"}
	params := []string{"", "bots=1", "period=90d", "compare=year", "limit=100", "source=app", "type=video", "asset=" + bAsset,
		"period=custom&from=2026-01-01&to=2026-12-31"}
	for _, p := range paths {
		for _, q := range params {
			var raw json.RawMessage
			code := get(t, ts, "a", p+"?"+q, &raw)
			if code != 200 {
				t.Fatalf("%s?%s: status %d", p, q, code)
			}
			for id, tn := range owner {
				if tn != tenantA && strings.Contains(string(raw), `"`+id+`"`) {
					t.Fatalf("%s?%s as %s returned %s's asset %s", p, q, tenantA, tn, id)
				}
			}
			if strings.Contains(string(raw), tenantB) {
				t.Fatalf("%s?%s mentions %s", p, q, tenantB)
			}
			if q == "asset="+bAsset && p == "/api/summary" {
				var s explorer.Summary
				_ = json.Unmarshal(raw, &s)
				if s.Cards["views"].Cur != 0 || s.Cards["downloads"].Cur != 0 {
					t.Fatalf("B's asset shows figures to A: %+v", s.Cards)
				}
			}
		}
		if code := get(t, ts, "a", p+"?tenant="+tenantB, nil); code != http.StatusForbidden {
			t.Fatalf("%s?tenant=B as A: status %d, want 403", p, code)
		}
	}
	if code := get(t, ts, "a", "/api/asset?asset="+bAsset, nil); code != http.StatusNotFound {
		t.Fatalf("B's asset page as A: status %d, want 404", code)
	}
	// The same asset is visible to B and to the admin.
	if code := get(t, ts, "b", "/api/asset?asset="+bAsset, nil); code != 200 {
		t.Fatalf("B's own asset page: status %d", code)
	}
	var s explorer.Summary
	if code := get(t, ts, "admin", "/api/summary?tenant="+tenantB, &s); code != 200 {
		t.Fatalf("admin choosing B: %d", code)
	}
	if want := count(tenantB, half, now.Truncate(24*time.Hour), false).views; int64(s.Cards["views"].Cur) != want {
		t.Fatalf("admin sees %v views of B, want %d", s.Cards["views"].Cur, want)
	}
	var tenants []explorer.Tenant
	get(t, ts, "admin", "/api/tenants", &tenants)
	if len(tenants) < 2 {
		t.Fatalf("admin sees tenants %v", tenants)
	}
	get(t, ts, "a", "/api/tenants", &tenants)
	if len(tenants) != 1 || tenants[0].ID != tenantA {
		t.Fatalf("A sees tenants %v", tenants)
	}
}

func TestAssetPageAndHighlights(t *testing.T) { onBackends(t, testAssetPageAndHighlights) }

func testAssetPageAndHighlights(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	// The rising story of the workload: asset index 9.
	rising := ""
	for _, e := range fixture {
		if e.ReferringDomain == "linkedin.com" && !e.EventTime.Before(half) {
			rising = e.AssetID // any linkedin asset; the story's dominates
		}
	}
	var as explorer.TopAssets
	get(t, ts, "admin", "/api/assets?period=7d&limit=1&tenant="+owner[rising], &as)
	var page explorer.AssetPage
	if code := get(t, ts, "admin", "/api/asset?period=7d&asset="+as.Assets[0].AssetID, &page); code != 200 {
		t.Fatalf("asset page: %d", code)
	}
	if page.Title == "" || len(page.Embeds) == 0 || page.FirstSeen.IsZero() || page.Tenant != owner[as.Assets[0].AssetID] {
		t.Fatalf("asset page %+v", page)
	}
	var apps int
	for _, e := range fixture {
		if e.AssetID == page.AssetID && e.Source == event.SourceApp && !e.EventTime.Before(half) && !e.EventTime.After(now) &&
			(e.EventType == event.TypeShare || e.EventType == event.TypeConvert || e.EventType == event.TypePermissionChange) {
			apps++
		}
	}
	if len(page.Timeline) != min(apps, 50) {
		t.Fatalf("timeline has %d events, want %d", len(page.Timeline), apps)
	}
	var h explorer.Highlights
	if code := get(t, ts, "admin", "/api/highlights?period=7d", &h); code != 200 {
		t.Fatalf("highlights: %d", code)
	}
	var up *explorer.Highlight
	for i := range h.Highlights {
		if h.Highlights[i].Kind == "asset_up" && up == nil {
			up = &h.Highlights[i]
		}
	}
	if up == nil || up.Change == nil && up.Prev != 0 || up.Cur < h.MinCount || up.Site == "" || up.Title != catalogOf(up.AssetID).Title || up.Type != catalogOf(up.AssetID).Type {
		t.Fatalf("no rising asset with its main site in %+v", h.Highlights)
	}
	cur, prev := count("", half, now.Truncate(24*time.Hour), false), count("", start, half, false)
	nc, np := cur.assets[up.AssetID], prev.assets[up.AssetID]
	if up.Cur != nc[0]+nc[1] || up.Prev != np[0]+np[1] || math.Abs(*up.Change-(float64(up.Cur)/float64(up.Prev)-1)*100) > 0.01 {
		t.Fatalf("highlight %+v, want %d after %d", up, nc[0]+nc[1], np[0]+np[1])
	}
	// Raising the threshold silences it.
	if *up.Change < 100000 {
		for _, x := range h.Highlights {
			if x.Change != nil && math.Abs(*x.Change) < h.MinChange {
				t.Fatalf("a change below the threshold was reported: %+v", x)
			}
		}
	}
}

func TestCSVExport(t *testing.T) { onBackends(t, testCSVExport) }

func testCSVExport(t *testing.T, c *cluster) {
	ts := c.newServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/assets?period=7d&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["a"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="leasehold-assets-2026-11-23-2026-11-29.csv"`) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var js explorer.TopAssets
	get(t, ts, "a", "/api/assets?period=7d", &js)
	if len(rows) != 1+len(js.Assets)+len(js.Dropped) || rows[0][1] != "asset_id" || rows[1][1] != js.Assets[0].AssetID || rows[1][5] != fmt.Sprint(js.Assets[0].Views) {
		t.Fatalf("csv %v", rows[:2])
	}
	if code := get(t, ts, "a", "/api/sources?format=csv&table=nope", nil); code != http.StatusBadRequest {
		t.Fatalf("unknown table: %d", code)
	}
}

// TestParametersAreTyped checks that only the allowed values reach a query:
// anything else, including query DSL, is a 400 before OpenSearch is asked.
func TestParametersAreTyped(t *testing.T) {
	c := openSearch() // refused before any store is asked
	c.seed(t)
	ts := c.newServer(t)
	for _, q := range []string{
		"type=" + url.QueryEscape(`{"match_all":{}}`), "source=*", "period=1y", "compare=all", "limit=100000", "bots=maybe",
		"asset=" + url.QueryEscape(`a" OR tenant:*`), "query=" + url.QueryEscape(`{"bool":{}}`), "from=2026-01-01&period=custom&to=yesterday",
		"tenant=" + url.QueryEscape("*"), "period=7d&period=30d",
	} {
		if code := get(t, ts, "admin", "/api/summary?"+q, nil); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, code)
		}
	}
}

// TestNoDataYet asks every endpoint of an explorer whose indices do not
// exist yet (a new deployment): every answer is a 200 with nothing in it,
// which the page shows as its empty state.
func TestNoDataYet(t *testing.T) { onBackends(t, testNoDataYet) }

func testNoDataYet(t *testing.T, c *cluster) {
	users, _ := explorer.NewUsers([]explorer.User{{Name: "admin", TokenSHA256: explorer.HashToken(tokens["admin"]), Admin: true}})
	srv, err := explorer.New(explorer.Config{Backend: c.b, Index: "explorer-nothing-here-*", Now: func() time.Time { return now }}, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, p := range []string{"summary", "assets", "sources", "places", "tech", "highlights", "tenants"} {
		var raw json.RawMessage
		if code := get(t, ts, "admin", "/api/"+p, &raw); code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
	}
	var s explorer.Summary
	get(t, ts, "admin", "/api/summary", &s)
	if s.Freshness.Newest != nil || s.Cards["views"].Cur != 0 || len(s.Series) != 7 {
		t.Fatalf("empty summary %+v", s)
	}
	if code := get(t, ts, "admin", "/api/asset?asset=x", nil); code != http.StatusNotFound {
		t.Fatalf("asset of an empty index: %d", code)
	}
}
