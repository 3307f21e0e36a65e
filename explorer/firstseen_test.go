package explorer_test

import (
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
)

// TestFirstSeenHighlightsMatchTheWorkload: "n sites referred uses for the
// first time" (with the sites and their uses) and "n assets were used
// from a website for the first time", against the fixture's events, for
// an admin of all customers, an admin of one and a customer, from
// rollups and from events; then again with each site made to list one
// earlier asset, so that the search of earlier uses is asked again
// restricted to the candidates (seenBefore's other way), with the same
// answers.
func TestFirstSeenHighlightsMatchTheWorkload(t *testing.T) {
	onBackends(t, testFirstSeenHighlightsMatchTheWorkload)
}

func testFirstSeenHighlightsMatchTheWorkload(t *testing.T, c *cluster) {
	rolled, rts := c.newServerOf(t, explorer.RollupsRead)
	events, ets := c.newServerOf(t, explorer.RollupsOff)
	users := []struct{ user, tenant, extra string }{{"admin", "", ""}, {"admin", tenantB, "&tenant=" + tenantB}, {"a", tenantA, ""}}
	periods := []string{"period=7d", "period=custom&from=2026-11-20&to=2026-11-26", "period=custom&from=2026-11-28&to=2026-11-29"}
	check := func() (reported int) {
		for _, ts := range []*httptest.Server{rts, ets} {
			for _, u := range users {
				for _, p := range periods {
					var h explorer.Highlights
					if code := get(t, ts, u.user, "/api/highlights?"+p+u.extra, &h); code != 200 {
						t.Fatalf("%s as %s: %d", p, u.user, code)
					}
					from, err1 := time.Parse(time.DateOnly, h.Period.From)
					last, err2 := time.Parse(time.DateOnly, h.Period.To)
					if err1 != nil || err2 != nil {
						t.Fatalf("period %+v", h.Period)
					}
					sites, uses, embeds := firstSeenOf(t, u.tenant, from, last.AddDate(0, 0, 1))
					var gotSites []string
					var gotUses int64
					gotEmbeds := 0
					for _, x := range h.Highlights {
						switch x.Kind {
						case "new_sites":
							gotSites, gotUses = x.Sites, x.Cur
							if x.Count != len(x.Sites) {
								t.Errorf("%s as %s: new sites counted %d, listed %d", p, u.user, x.Count, len(x.Sites))
							}
						case "new_embeds":
							gotEmbeds = x.Count
						}
					}
					if !slices.Equal(gotSites, sites) || gotUses != uses || gotEmbeds != embeds {
						t.Errorf("%s as %s: new sites %v (%d uses), %d assets on a site for the first time; want %v (%d uses), %d",
							p, u.user, gotSites, gotUses, gotEmbeds, sites, uses, embeds)
					}
					reported += len(sites) + embeds
				}
			}
		}
		return reported
	}
	if check() == 0 {
		t.Fatal("the fixture has no site or asset seen for the first time in these periods: the test proves nothing")
	}
	defer explorer.SetBeforeSize(1)()
	fellBack := rolled.BeforeFellBack() + events.BeforeFellBack()
	check()
	if rolled.BeforeFellBack()+events.BeforeFellBack() == fellBack {
		t.Fatal("with one earlier asset listed per site, no search of earlier uses was asked again restricted to the candidates")
	}
}

// firstSeenOf counts, from the fixture, the websites (people's uses,
// at least 5 in [from, to)) with no use before from, their uses, and the
// assets with at least 5 uses from such a site or from a website where
// they had none before.
func firstSeenOf(t *testing.T, tenant string, from, to time.Time) (sites []string, uses int64, embeds int) {
	t.Helper()
	type pair struct{ site, asset string }
	cur, pairs := map[string]int64{}, map[pair]int64{}
	seen, seenPair := map[string]bool{}, map[pair]bool{}
	for _, e := range fixture {
		if tenant != "" && e.Tenant != tenant || e.Bot || e.EventType != event.TypeView && e.EventType != event.TypeDownload ||
			e.ReferringDomain == "" || explorer.Channel([]string{"app.example.com"}, e.ReferringDomain) != explorer.ChannelWebsites {
			continue
		}
		p := pair{e.ReferringDomain, e.AssetID}
		switch {
		case e.EventTime.Before(from):
			seen[p.site], seenPair[p] = true, true
		case e.EventTime.Before(to):
			cur[p.site]++
			pairs[p]++
		}
	}
	if len(cur) >= 300 {
		t.Fatalf("%d sites: the highlights look at the 300 busiest only", len(cur))
	}
	for site, n := range cur {
		if n >= 5 && !seen[site] {
			sites = append(sites, site)
			uses += n
		}
	}
	sort.Strings(sites)
	assets := map[string]bool{}
	for p, n := range pairs {
		if n >= 5 && cur[p.site] >= 5 && !seenPair[p] {
			assets[p.asset] = true
		}
	}
	return sites, uses, len(assets)
}
