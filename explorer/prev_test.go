package explorer_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
)

// listed is a breakdown of the uses (views and downloads, people only) of
// the fixture by one dimension, counted here from the events.
func listed(tenant string, from, to time.Time, key func(e event.Event) string) map[string]int {
	out := map[string]int{}
	for _, e := range fixture {
		if tenant != "" && e.Tenant != tenant || e.EventTime.Before(from) || !e.EventTime.Before(to) || e.Bot ||
			e.EventType != event.TypeView && e.EventType != event.TypeDownload {
			continue
		}
		if k := key(e); k != "" {
			out[k]++
		}
	}
	return out
}

// TestPreviousFiguresOfListedKeys checks the previous period's figure of
// every row of every breakdown with a comparison (pages, sites, cities,
// countries, devices, browsers, systems) against the events, for lists
// short enough that some of their rows were not in the previous period's
// top list: such a row's previous figure must be its count, not 0 (the
// figure used to come from the previous top list only). The test fails
// unless at least one checked row was outside the previous top list with
// uses then, so that it keeps proving that case.
func TestPreviousFiguresOfListedKeys(t *testing.T) { onBackends(t, testPreviousFiguresOfListedKeys) }

func testPreviousFiguresOfListedKeys(t *testing.T, c *cluster) {
	outside := checkListedFigures(t, c.newServer(t))
	if outside["pages"] == 0 {
		t.Fatalf("no listed page was outside the previous top list with uses before (%v): the test proves nothing", outside)
	}
	t.Logf("rows outside the previous top list, checked: %v", outside)
}

// TestListedFiguresWhenShardsLeaveKeysOut: with each shard reporting no
// more keys than the list shows (shard_size = size), a listed key's
// bucket may miss the shards where it was not among the top, so its
// count from the list is short; every row's current and previous
// figures must still be the events' (counted again, restricted to the
// listed keys). Read from the events' daily indices, one shard a day, and
// it fails unless some current figure was in fact counted again.
func TestListedFiguresWhenShardsLeaveKeysOut(t *testing.T) {
	onBackends(t, testListedFiguresWhenShardsLeaveKeysOut)
}

func testListedFiguresWhenShardsLeaveKeysOut(t *testing.T, c *cluster) {
	defer explorer.SetListShardSize(1)()
	srv, ts := c.newServerOf(t, explorer.RollupsOff)
	checkListedFigures(t, ts)
	if srv.ListRecounts() == 0 {
		t.Fatal("no listed figure was short with one key a shard: the test proves nothing")
	}
	t.Logf("current figures counted again: %d", srv.ListRecounts())
}

// checkListedFigures compares the current and previous figures of every
// row of every breakdown with a comparison with the events, for lists of
// 2, 3 and 5 rows, and returns how many rows of each breakdown were not
// in the previous period's top list but had uses then.
func checkListedFigures(t *testing.T, ts *httptest.Server) map[string]int {
	t.Helper()
	end := now.Truncate(24 * time.Hour)
	dims := map[string]func(e event.Event) string{
		"pages":     func(e event.Event) string { return e.Referrer },
		"sites":     func(e event.Event) string { return e.ReferringDomain },
		"cities":    func(e event.Event) string { return e.Geo.City },
		"countries": func(e event.Event) string { return e.Geo.CountryISO },
		"devices":   func(e event.Event) string { return e.UA.Device },
		"browsers":  func(e event.Event) string { return e.UA.Browser },
		"systems":   func(e event.Event) string { return e.UA.OS },
	}
	outside := map[string]int{}
	for _, user := range []string{"admin", "a"} {
		tenant := ""
		if user == "a" {
			tenant = tenantA
		}
		for _, limit := range []int{2, 3, 5} {
			var src explorer.Sources
			var pl explorer.Places
			var tech explorer.Tech
			q := fmt.Sprintf("?period=7d&compare=previous&limit=%d", limit)
			for path, v := range map[string]any{"/api/sources": &src, "/api/places": &pl, "/api/tech": &tech} {
				if code := get(t, ts, user, path+q, v); code != 200 {
					t.Fatalf("%s%s as %s: status %d", path, q, user, code)
				}
			}
			lists := map[string][]explorer.Count{"pages": src.Pages, "sites": src.Sites, "cities": pl.Cities,
				"countries": pl.Countries, "devices": tech.Devices, "browsers": tech.Browsers, "systems": tech.Systems}
			for name, rows := range lists {
				cur, prev := listed(tenant, half, end, dims[name]), listed(tenant, start, half, dims[name])
				prevTop := keysByCount(prev)
				prevTop = prevTop[:min(len(prevTop), limit)]
				for _, r := range rows {
					if r.Prev == nil {
						t.Fatalf("%s as %s, limit %d: %s has no previous figure", name, user, limit, r.Key)
					}
					if int(r.Cur) != cur[r.Key] || int(*r.Prev) != prev[r.Key] {
						t.Errorf("%s as %s, limit %d: %s shows %v, before %v; the events say %d, before %d",
							name, user, limit, r.Key, r.Cur, *r.Prev, cur[r.Key], prev[r.Key])
					}
					if _, in := indexOf(prevTop, r.Key); !in && prev[r.Key] > 0 {
						outside[name]++
					}
				}
			}
		}
	}
	return outside
}
