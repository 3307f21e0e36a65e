package explorer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/explorer/explorertest"
	"github.com/leasehold/leasehold/internal/dev/workload"
)

// raw calls the API as user and returns the status and the body.
func raw(t *testing.T, ts *httptest.Server, user, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tokens[user])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRollupsMatchEvents asks every view of the page, for an admin (all
// customers and one), a customer, and every control, of an explorer that
// reads the fixture's rollups and of one that reads its events only: the
// answers must be the same, byte for byte. Unique viewers are counted per
// day in both (see explorer/viewers.go).
func TestRollupsMatchEvents(t *testing.T) { onBackends(t, testRollupsMatchEvents) }

func testRollupsMatchEvents(t *testing.T, c *cluster) {
	rolled, events := c.newServer(t), c.newEventsServer(t)
	busy := top(count(tenantA, start, now, false), 1)[0]
	params := []string{
		"period=7d", "period=7d&compare=year", "period=7d&compare=none", "period=30d", "period=90d",
		"period=month&month=2026-11", "period=custom&from=2026-11-18&to=2026-11-27",
		"period=custom&from=2026-11-20&to=2026-11-20", "period=custom&from=2026-11-20&to=2026-11-21&metric=viewers",
		"period=custom&from=2026-11-19&to=2026-11-20&metric=sites",
		"period=7d&type=video", "period=7d&source=app", "period=7d&source=cloudfront&bots=1", "period=30d&metric=viewers",
		"period=7d&metric=sites", "period=7d&limit=100", "period=7d&asset=" + busy,
		// Before the fixture's first event, period and comparison: nothing
		// is read, and nothing is what both answer.
		"period=custom&from=2026-10-01&to=2026-10-10",
	}
	paths := []string{"summary", "assets", "sources", "places", "tech", "highlights"}
	users := []struct{ user, extra string }{{"admin", ""}, {"admin", "&tenant=" + tenantB}, {"a", ""}}
	compared := 0
	for _, u := range users {
		for _, p := range paths {
			for _, q := range params {
				path := "/api/" + p + "?" + q + u.extra
				c1, b1 := raw(t, rolled, u.user, path)
				c2, b2 := raw(t, events, u.user, path)
				if c1 != 200 || c2 != 200 {
					t.Fatalf("%s as %s: status %d (rollups), %d (events)", path, u.user, c1, c2)
				}
				if !bytes.Equal(b1, b2) {
					t.Errorf("%s as %s differs:\nrollups: %.2000s\nevents:  %.2000s", path, u.user, b1, b2)
				}
				compared++
			}
		}
	}
	for _, u := range []string{"admin", "a"} {
		for _, path := range []string{"/api/tenants", "/api/asset?period=30d&asset=" + busy} {
			c1, b1 := raw(t, rolled, u, path)
			c2, b2 := raw(t, events, u, path)
			if c1 != c2 || !bytes.Equal(b1, b2) {
				t.Errorf("%s as %s differs: %d %.500s / %d %.500s", path, u, c1, b1, c2, b2)
			}
		}
	}
	t.Logf("%d answers compared", compared)
}

// TestRollupsAreRead checks that the rollup server does read rollups for
// the fixture's finished days (the equality above would also hold if it
// silently read events), and events for the day in progress.
func TestRollupsAreRead(t *testing.T) { onBackends(t, testRollupsAreRead) }

func testRollupsAreRead(t *testing.T, c *cluster) {
	srv := newExplorer(t, c.b, c.events+"-*", c.rollups, explorer.RollupsRead, 0)
	ctx := context.Background()
	blocks, days := srv.RollupPlan(ctx, "places.2", start, now.Truncate(24*time.Hour).AddDate(0, 0, 1), false)
	if len(blocks) == 0 || !slices.Equal(days, []string{"2026-11-30"}) {
		t.Fatalf("places of 11-16..11-30 read blocks %v and days %v; want blocks, and events for 11-30 only", blocks, days)
	}
	if len(blocks) >= 14 {
		t.Fatalf("%d blocks for 14 days: larger blocks are not used: %v", len(blocks), blocks)
	}
	blocks, days = srv.RollupPlan(ctx, "core.1", start, half, true)
	if len(blocks) != 7 || len(days) != 0 {
		t.Fatalf("per-day figures of a week read blocks %v and days %v; want 7 day blocks", blocks, days)
	}
}

func newExplorer(t *testing.T, b explorer.Backend, index, prefix, mode string, settle time.Duration) *explorer.Server {
	t.Helper()
	users, err := explorer.NewUsers([]explorer.User{
		{Name: "admin", TokenSHA256: explorer.HashToken(tokens["admin"]), Admin: true},
		{Name: "a", TokenSHA256: explorer.HashToken(tokens["a"]), Tenant: tenantA},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := explorer.New(explorer.Config{Backend: b, Index: index, Rollups: mode, RollupPrefix: prefix, RollupSettle: settle,
		AppDomains: []string{"app.example.com"}, Now: func() time.Time { return now }}, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestRollupsFollowLateEvents: a CloudFront line that arrives a day late,
// and a replay that writes an event again, change days that are already
// rolled up. The explorer must count them at once (reading those days'
// events until their blocks are rebuilt), and the next pass of the
// builder rebuilds exactly those days' blocks; a day that keeps changing
// waits for the settle time.
func TestRollupsFollowLateEvents(t *testing.T) { onBackends(t, testRollupsFollowLateEvents) }

func testRollupsFollowLateEvents(t *testing.T, c *cluster) {
	ctx := context.Background()
	prefix := fmt.Sprintf("explorer-late-%d", time.Now().UnixNano()%1e9)
	rprefix := fmt.Sprintf("explorer-late-rollups-%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		for _, p := range []string{prefix, rprefix} {
			if err := explorertest.Delete(context.Background(), c.b, p); err != nil {
				t.Errorf("clean up: %v", err)
			}
		}
	})
	// Four days of a small workload, ending the day before "now".
	wl := workload.New(workload.Config{Seed: 3, Start: now.Truncate(24*time.Hour).AddDate(0, 0, -4), Hours: 4 * 24, PeakHour: 30, AppEvents: 200, Assets: 80, Tenants: 3})
	dir := t.TempDir()
	evs, err := explorertest.Generate(ctx, wl, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs { // the fixture's customer A, so that user a sees them
		if evs[i].Tenant == wl.Assets[0].Tenant {
			evs[i].Tenant = tenantA
		}
	}
	if err := explorertest.Index(ctx, c.b, prefix, evs); err != nil {
		t.Fatal(err)
	}
	builder := newExplorer(t, c.b, prefix+"-*", rprefix, explorer.RollupsBuild, 0)
	if st, err := builder.BuildRollups(ctx); err != nil || st.Blocks == 0 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	rolled := httptest.NewServer(builder)
	defer rolled.Close()
	eventsOnly := httptest.NewServer(newExplorer(t, c.b, prefix+"-*", rprefix, explorer.RollupsOff, 0))
	defer eventsOnly.Close()
	period := "/api/summary?period=7d&compare=none"
	same := func(step string) explorer.Summary {
		t.Helper()
		var s explorer.Summary
		for _, u := range []string{"admin", "a"} {
			for _, p := range []string{period, "/api/places?period=7d", "/api/assets?period=7d", "/api/highlights?period=7d"} {
				c1, b1 := raw(t, rolled, u, p)
				c2, b2 := raw(t, eventsOnly, u, p)
				if c1 != 200 || c2 != 200 || !bytes.Equal(b1, b2) {
					t.Fatalf("%s: %s as %s differs:\nrollups: %d %.1500s\nevents:  %d %.1500s", step, p, u, c1, b1, c2, b2)
				}
			}
		}
		get(t, rolled, "a", period, &s)
		return s
	}
	weekDays := func() []string { // the four days with events
		_, days := builder.RollupPlan(ctx, "core.1", now.Truncate(24*time.Hour).AddDate(0, 0, -4), now.Truncate(24*time.Hour), true)
		return days
	}
	before := same("rolled up")
	if d := weekDays(); len(d) != 0 {
		t.Fatalf("days read from events after the first pass: %v", d)
	}

	// A late view on the first day for customer A, another for a
	// different customer (which A must not see), and a replay (same id,
	// same content) of an event of the second day.
	day1, day2 := now.Truncate(24*time.Hour).AddDate(0, 0, -4), now.Truncate(24*time.Hour).AddDate(0, 0, -3)
	adminViews := func() float64 {
		var s explorer.Summary
		get(t, rolled, "admin", period, &s)
		return s.Cards["views"].Cur
	}
	allBefore := adminViews()
	var late, lateOther, replay event.Event
	for _, ev := range evs {
		if late.EventID == "" && ev.Tenant == tenantA && ev.EventType == event.TypeView && !ev.Bot && ev.EventTime.Before(day2) {
			late = ev
		}
		if lateOther.EventID == "" && ev.Tenant != tenantA && ev.Tenant != "" && ev.EventType == event.TypeView && !ev.Bot && ev.EventTime.Before(day2) {
			lateOther = ev
		}
		if replay.EventID == "" && !ev.EventTime.Before(day2) && ev.EventTime.Before(day2.AddDate(0, 0, 1)) {
			replay = ev
		}
	}
	if lateOther.EventID == "" {
		t.Fatal("the workload has no view of another customer on the first day")
	}
	late.EventID += "-late"
	lateOther.EventID += "-late"
	if err := explorertest.Index(ctx, c.b, prefix, []event.Event{late, lateOther, replay}); err != nil {
		t.Fatal(err)
	}
	after := same("late event, not rolled up yet")
	if after.Cards["views"].Cur != before.Cards["views"].Cur+1 {
		t.Fatalf("A's views %v after a late view of A's and one of another customer's, were %v", after.Cards["views"].Cur, before.Cards["views"].Cur)
	}
	if all := adminViews(); all != allBefore+2 {
		t.Fatalf("all customers' views %v after two late views, were %v", all, allBefore)
	}
	if d := weekDays(); !slices.Equal(d, []string{day1.Format(time.DateOnly), day2.Format(time.DateOnly)}) {
		t.Fatalf("days read from events after the late writes: %v, want the two changed days", d)
	}

	// The next pass rebuilds the two days (for every cube) and the blocks
	// above them, nothing else.
	st, err := builder.BuildRollups(ctx)
	if err != nil || st.Blocks == 0 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	if d := weekDays(); len(d) != 0 {
		t.Fatalf("days read from events after the second pass: %v", d)
	}
	if again := same("rebuilt"); again.Cards["views"].Cur != after.Cards["views"].Cur {
		t.Fatalf("views %v after the rebuild, want %v", again.Cards["views"].Cur, after.Cards["views"].Cur)
	}
	if all := adminViews(); all != allBefore+2 {
		t.Fatalf("all customers' views %v after the rebuild, want %v", all, allBefore+2)
	}
	if st, _ := builder.BuildRollups(ctx); st.Blocks != 0 {
		t.Fatalf("a pass with nothing changed built %+v", st)
	}

	// With a settle time, a changed day waits, read from its events.
	patient := newExplorer(t, c.b, prefix+"-*", rprefix, explorer.RollupsBuild, time.Hour)
	late.EventID += "-2"
	if err := explorertest.Index(ctx, c.b, prefix, []event.Event{late}); err != nil {
		t.Fatal(err)
	}
	st, err = patient.BuildRollups(ctx)
	if err != nil || st.Blocks != 0 || st.Waiting == 0 {
		t.Fatalf("pass within the settle time: %+v, %v", st, err)
	}
	if s := same("changed, settling"); s.Cards["views"].Cur != after.Cards["views"].Cur+1 {
		t.Fatalf("views %v while settling, want %v", s.Cards["views"].Cur, after.Cards["views"].Cur+1)
	}
	_ = os.Remove(dir)
}

// TestRollupsKeepTenantsApart: the rollup indices hold every customer's
// counts side by side with the all-customers totals, so a filter that
// slipped would show a customer another's figures. Reading through the
// rollups (checked to be read, not bypassed), each customer's figures
// must be its own as counted from the workload, whatever it asks; asking
// for another customer is refused.
func TestRollupsKeepTenantsApart(t *testing.T) { onBackends(t, testRollupsKeepTenantsApart) }

func testRollupsKeepTenantsApart(t *testing.T, c *cluster) {
	ctx := context.Background()
	srv := newExplorer(t, c.b, c.events+"-*", c.rollups, explorer.RollupsRead, 0)
	end := now.Truncate(24 * time.Hour)
	if blocks, days := srv.RollupPlan(ctx, "core.1", start, end, false); len(blocks) == 0 || len(days) != 0 {
		t.Fatalf("the fixture's finished days are not read from rollups: blocks %v, days %v", blocks, days)
	}
	// The hazard is real: other customers' and all-customers documents
	// lie in the same indices.
	for _, f := range []string{`{"term":{"tenant":"` + tenantB + `"}}`, `{"term":{"rollup.level":"all"}}`} {
		if n := countDocs(t, c.b, c.rollups+"-d-*", f); n == 0 {
			t.Fatalf("no rollup documents match %s", f)
		}
	}
	ts := c.newServer(t)
	for _, u := range []struct{ user, tenant, other string }{{"a", tenantA, tenantB}, {"b", tenantB, tenantA}} {
		for _, bots := range []bool{false, true} {
			q := "/api/summary?period=7d&compare=previous"
			if bots {
				q += "&bots=1"
			}
			var s explorer.Summary
			if code := get(t, ts, u.user, q, &s); code != 200 {
				t.Fatalf("%s as %s: status %d", q, u.user, code)
			}
			cur, prev := count(u.tenant, half, end, bots), count(u.tenant, start, half, bots)
			checkPair(t, u.user+" views", s.Cards["views"], cur.views, prev.views)
			checkPair(t, u.user+" downloads", s.Cards["downloads"], cur.downloads, prev.downloads)
			checkPair(t, u.user+" bytes", s.Cards["bytes"], cur.bytes, prev.bytes)
			checkPair(t, u.user+" sites", s.Cards["sites"], int64(len(cur.sites)), int64(len(prev.sites)))
		}
		var got explorer.TopAssets
		if code := get(t, ts, u.user, "/api/assets?period=30d&limit=100", &got); code != 200 {
			t.Fatalf("assets as %s: status %d", u.user, code)
		}
		all := count(u.tenant, start, end, false)
		if len(got.Assets) == 0 {
			t.Fatalf("%s sees no assets", u.user)
		}
		for _, a := range got.Assets {
			if owner[a.AssetID] != u.tenant && catalogOf(a.AssetID).Title != "" {
				t.Fatalf("%s sees asset %s of %s", u.user, a.AssetID, owner[a.AssetID])
			}
			if c := all.assets[a.AssetID]; a.Views != c[0] || a.Downloads != c[1] {
				t.Fatalf("%s: asset %s has %d views, %d downloads; its own events have %d, %d", u.user, a.AssetID, a.Views, a.Downloads, c[0], c[1])
			}
		}
		if code := get(t, ts, u.user, "/api/summary?period=7d&tenant="+u.other, nil); code != http.StatusForbidden {
			t.Fatalf("%s asking for %s: status %d, want 403", u.user, u.other, code)
		}
	}
}

// countDocs counts the documents of index matching the JSON query filter.
func countDocs(t *testing.T, b explorer.Backend, index, filter string) int64 {
	t.Helper()
	status, answer, err := b.Do(context.Background(), http.MethodPost, "/"+index+"/_count", []byte(`{"query":`+filter+`}`))
	if err != nil {
		t.Fatal(err)
	}
	var n struct{ Count int64 }
	if err := json.Unmarshal(answer, &n); err != nil || status != 200 {
		t.Fatalf("count %s: status %d, %v", index, status, err)
	}
	return n.Count
}

// TestTopCubesRankExactly: an admin's rankings of all customers' assets
// read the top cube, which keep only a few keys per block here
// (fixtureTopKeep). Each answer equals the events' answer; some rankings
// are concluded from the top cubes (their candidates provably hold the
// top list) and some are not and are asked from the full cubes.
func TestTopCubesRankExactly(t *testing.T) { onBackends(t, testTopCubesRankExactly) }

func testTopCubesRankExactly(t *testing.T, c *cluster) {
	srv := newExplorer(t, c.b, c.events+"-*", c.rollups, explorer.RollupsRead, 0)
	rolled := httptest.NewServer(srv)
	defer rolled.Close()
	events := c.newEventsServer(t)
	for _, path := range []string{
		"/api/assets?period=7d", "/api/assets?period=7d&limit=3", "/api/assets?period=30d&limit=5", "/api/assets?period=7d&limit=50",
		"/api/sources?period=7d", "/api/sources?period=7d&limit=3", "/api/sources?period=30d&limit=100",
		"/api/highlights?period=7d", "/api/assets?period=7d&type=video&limit=5",
	} {
		c1, b1 := raw(t, rolled, "admin", path)
		c2, b2 := raw(t, events, "admin", path)
		if c1 != 200 || c2 != 200 || !bytes.Equal(b1, b2) {
			t.Errorf("%s: %d %.1000s\nevents: %d %.1000s", path, c1, b1, c2, b2)
		}
	}
	fromTop, fellBack := srv.TopRankings()
	t.Logf("rankings from the top cubes: %d; asked from the full cubes: %d", fromTop, fellBack)
	if fromTop == 0 || fellBack == 0 {
		t.Fatalf("rankings from the top cubes: %d, asked from the full cubes: %d; want both", fromTop, fellBack)
	}
}
