package explorer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leasehold/leasehold/explorer"
)

// TestFiguresAtOnceMatchTwoSearches asks the top assets and the
// highlights, for every kind of user, period and comparison, of an
// explorer that takes the listed assets' figures from the ranking search
// where it proves them exact, and of one that always counts them with a
// second search (as before): the answers must be the same, byte for byte,
// from rollups and from events. It fails unless some answers did come
// from the ranking search alone.
func TestFiguresAtOnceMatchTwoSearches(t *testing.T) {
	onBackends(t, testFiguresAtOnceMatchTwoSearches)
}

func testFiguresAtOnceMatchTwoSearches(t *testing.T, c *cluster) {
	for _, rollups := range []string{explorer.RollupsRead, explorer.RollupsOff} {
		one, ts1 := c.newServerOf(t, rollups)
		two, ts2 := c.newServerOf(t, rollups)
		two.SetFiguresAtOnce(false)
		for _, user := range []string{"admin", "a", "b"} {
			for _, q := range []string{"period=7d", "period=7d&compare=year", "period=30d", "period=90d", "period=7d&type=video",
				"period=7d&bots=1", "period=7d&limit=25", "period=custom&from=2026-11-20&to=2026-11-26", "period=7d&tenant=" + tenantA} {
				if user != "admin" && q == "period=7d&tenant="+tenantA {
					continue
				}
				for _, path := range []string{"/api/assets", "/api/highlights"} {
					p := path + "?" + q
					c1, b1 := raw(t, ts1, user, p)
					c2, b2 := raw(t, ts2, user, p)
					if c1 != 200 || c2 != 200 || string(b1) != string(b2) {
						t.Errorf("%s %s as %s: one search %d %s\ntwo searches %d %s", rollups, p, user, c1, b1, c2, b2)
					}
				}
			}
		}
		atOnce, apart := one.AssetFigures()
		if atOnce == 0 {
			t.Fatalf("%s: no answer came from the ranking search alone (%d counted apart): the test proves nothing", rollups, apart)
		}
		if a, b := two.AssetFigures(); a != 0 || b != 0 {
			t.Fatalf("%s: the two-search explorer took the one-search path (%d, %d)", rollups, a, b)
		}
		t.Logf("%s: %d answers from the ranking search, %d counted apart", rollups, atOnce, apart)
	}
}

// TestFiguresAtOnceFallBack makes each shard report fewer assets than
// there are (a small shard_size, over the fixture's daily event indices),
// so that some listed assets' counts in the ranking search miss a shard:
// their error bound is not 0, and the figures must then be counted by a
// second search. It checks that this fallback was taken and that every
// figure shown is still the events' count.
func TestFiguresAtOnceFallBack(t *testing.T) { onBackends(t, testFiguresAtOnceFallBack) }

func testFiguresAtOnceFallBack(t *testing.T, c *cluster) {
	defer explorer.SetAtOnceShardSize(80)()
	srv, ts := c.newServerOf(t, explorer.RollupsOff)
	end := now.Truncate(24 * time.Hour)
	cur, prev := count("", half, end, false), count("", start, half, false)
	var as explorer.TopAssets
	if code := get(t, ts, "admin", "/api/assets?period=7d&limit=40", &as); code != 200 {
		t.Fatalf("assets: %d", code)
	}
	if _, apart := srv.AssetFigures(); apart == 0 {
		t.Error("the ranking search's figures were taken although shards left assets out")
	}
	for _, a := range append(append([]explorer.AssetRow{}, as.Assets...), as.Dropped...) {
		c, p := cur.assets[a.AssetID], prev.assets[a.AssetID]
		if a.Views != c[0] || a.Downloads != c[1] || a.PrevTotal == nil || *a.PrevTotal != p[0]+p[1] {
			t.Errorf("asset %s: %d views, %d downloads, before %v; the events say %d, %d, before %d", a.AssetID, a.Views, a.Downloads,
				fmt.Sprint(*a.PrevTotal), c[0], c[1], p[0]+p[1])
		}
	}
	var h explorer.Highlights
	if code := get(t, ts, "admin", "/api/highlights?period=7d", &h); code != 200 {
		t.Fatalf("highlights: %d", code)
	}
	movers := 0
	for _, x := range h.Highlights {
		if x.Kind != "asset_up" && x.Kind != "asset_down" {
			continue
		}
		movers++
		c, p := cur.assets[x.AssetID], prev.assets[x.AssetID]
		if x.Cur != c[0]+c[1] || x.Prev != p[0]+p[1] {
			t.Errorf("highlight %+v: the events say %d, before %d", x, c[0]+c[1], p[0]+p[1])
		}
	}
	if movers == 0 {
		t.Fatalf("no movers in %+v", h.Highlights)
	}
	_, apart := srv.AssetFigures()
	t.Logf("counted apart: %d", apart)
}
