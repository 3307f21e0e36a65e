package explorer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeSnapshot has events on days first..last, each with fingerprint
// "v1", and current records of the given blocks.
func fakeSnapshot(first, last day, built ...blockID) *snapshot {
	s := &snapshot{known: true, days: map[day]string{}, first: first, last: last, states: map[blockID]blockState{}}
	for d := first; d <= last; d++ {
		s.days[d] = "v1"
	}
	for _, id := range built {
		g := s.gen(id.level, id.idx)
		s.states[id] = blockState{Gen: g, Key: id.String() + "/" + g}
	}
	return s
}

// allBlocks lists every block of c's levels up to level that lies within [first, last].
func allBlocks(c *cube, first, last day, level int) []blockID {
	var ids []blockID
	levels := c.levels
	if len(levels) == 0 {
		levels = []int{0}
	}
	for _, k := range levels {
		if k > level {
			continue
		}
		for i := first >> k; (i+1)<<k <= last+1; i++ {
			if i<<k >= first {
				ids = append(ids, blockID{cube: c.name, level: k, idx: i})
			}
		}
	}
	return ids
}

func keysOf(p plan) []string {
	out := make([]string, len(p.keys))
	for i, k := range p.keys {
		out[i] = k[:strings.LastIndexByte(k, '/')]
	}
	return out
}

func daySpan(a, b day) span { return span{dayTime(a), dayTime(b)} }

func TestPlanUsesTheLargestCurrentBlocks(t *testing.T) {
	c := cubePlaces
	s := fakeSnapshot(0, 127, allBlocks(c, 0, 127, c.maxLevel())...)
	p := s.plan(c, []span{daySpan(3, 70)}, false, false)
	// Blocks of 1, 4, 16 and 64 days: 3 | 4-7 | 8-11 | 12-15 | 16-31 | 32-47 | 48-63 | 64-67 | 68 | 69
	want := []string{"places.2/0/3", "places.2/2/1", "places.2/2/2", "places.2/2/3", "places.2/4/1", "places.2/4/2", "places.2/4/3",
		"places.2/2/16", "places.2/0/68", "places.2/0/69"}
	if got := keysOf(p); !slices.Equal(got, want) || len(p.raw) != 0 {
		t.Fatalf("plan of days 3..69: blocks %v, events %v; want %v and no events", got, p.raw, want)
	}
	// Per day: day blocks only.
	if p := s.plan(c, []span{daySpan(3, 10)}, true, false); len(p.keys) != 7 || len(p.raw) != 0 {
		t.Fatalf("per-day plan: %v, %v", keysOf(p), p.raw)
	}
	// Hours from a cube without them: events.
	if p := s.plan(c, []span{daySpan(3, 5)}, true, true); len(p.keys) != 0 || len(p.raw) != 1 {
		t.Fatalf("hourly plan: %v, %v", keysOf(p), p.raw)
	}
}

func TestPlanReadsAChangedDayFromItsEvents(t *testing.T) {
	c := cubeReferrers
	s := fakeSnapshot(0, 63, allBlocks(c, 0, 63, c.maxLevel())...)
	s.days[21] = "v2" // a late event: day 21's indices changed after its blocks were built
	p := s.plan(c, []span{daySpan(16, 32)}, false, false)
	// 16-31 is not current; of its four blocks of four days, 20-23 is not
	// either: its days 20, 22 and 23 are read from their blocks.
	want := []string{"referrers.2/2/4", "referrers.2/0/20", "referrers.2/0/22", "referrers.2/0/23", "referrers.2/2/6", "referrers.2/2/7"}
	if got := keysOf(p); !slices.Equal(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	if len(p.raw) != 1 || !p.raw[0].from.Equal(dayTime(21)) || !p.raw[0].to.Equal(dayTime(22)) {
		t.Fatalf("events %v, want day 21 only", p.raw)
	}
	// Rebuilt: the day and its ancestors are current again.
	for _, k := range c.levels {
		id := blockID{cube: c.name, level: k, idx: 21 >> k}
		g := s.gen(k, 21>>k)
		s.states[id] = blockState{Gen: g, Key: id.String() + "/" + g}
	}
	if p := s.plan(c, []span{daySpan(16, 32)}, false, false); !slices.Equal(keysOf(p), []string{"referrers.2/4/1"}) || len(p.raw) != 0 {
		t.Fatalf("after the rebuild: %v, %v", keysOf(p), p.raw)
	}
}

func TestPlanEdges(t *testing.T) {
	c := cubeCore
	s := fakeSnapshot(10, 19, allBlocks(c, 10, 19, 0)...)
	// After the days with events (today's, or a new index not yet seen):
	// events. Before the first day with events there is nothing to read:
	// neither blocks nor events.
	p := s.plan(c, []span{{to: dayTime(25)}}, true, false)
	if len(p.keys) != 10 || len(p.raw) != 1 || !p.raw[0].from.Equal(dayTime(20)) || !p.raw[0].to.Equal(dayTime(25)) {
		t.Fatalf("open span: %v, %v", keysOf(p), p.raw)
	}
	if p := s.plan(c, []span{{from: dayTime(15)}}, true, false); len(p.keys) != 5 || len(p.raw) != 1 || !p.raw[0].from.Equal(dayTime(20)) || !p.raw[0].to.IsZero() {
		t.Fatalf("span open at its end: %v, %v", keysOf(p), p.raw)
	}
	for _, sp := range []span{daySpan(2, 9), daySpan(2, 10), {to: dayTime(10)}} {
		if p := s.plan(c, []span{sp}, false, false); len(p.keys) != 0 || len(p.raw) != 0 {
			t.Fatalf("span %v before every event: %v, %v; want nothing", sp, keysOf(p), p.raw)
		}
	}
	if p := s.plan(c, []span{daySpan(5, 12)}, true, false); len(p.keys) != 2 || len(p.raw) != 0 {
		t.Fatalf("span starting before the first event: %v, %v", keysOf(p), p.raw)
	}
	// A snapshot that knows no events at all: events everywhere (its
	// first day is after its last).
	if p := (&snapshot{known: true, first: 1, last: 0}).plan(c, []span{daySpan(2, 9)}, false, false); len(p.keys) != 0 || len(p.raw) != 1 {
		t.Fatalf("no events known: %v, %v", keysOf(p), p.raw)
	}
	// A span that is not whole days, and an unknown snapshot: events.
	odd := span{dayTime(12).Add(time.Hour), dayTime(14)}
	if p := s.plan(c, []span{odd}, false, false); len(p.keys) != 0 || len(p.raw) != 1 {
		t.Fatalf("unaligned span: %v, %v", keysOf(p), p.raw)
	}
	if p := (&snapshot{}).plan(c, []span{daySpan(12, 14)}, false, false); len(p.keys) != 0 || len(p.raw) != 1 {
		t.Fatalf("unknown snapshot: %v, %v", keysOf(p), p.raw)
	}
	// Days without events need nothing: a gap is neither a block nor events.
	delete(s.days, 15)
	if p := s.plan(c, []span{daySpan(14, 17)}, true, false); len(p.keys) != 2 || len(p.raw) != 0 {
		t.Fatalf("gap: %v, %v", keysOf(p), p.raw)
	}
	if p := s.plan(c, []span{daySpan(15, 16)}, true, false); len(p.keys) != 0 || len(p.raw) != 0 {
		t.Fatalf("a span inside the gap: %v, %v", keysOf(p), p.raw)
	}
	// ...and such a plan must match no events, not all of them (a bool
	// query without clauses matches everything).
	if q := string(mustJSON(spansQuery(nil))); q != `{"match_none":{}}` {
		t.Fatalf("the query of no spans is %s", q)
	}
	// Two spans (a period and its comparison) that touch are one range of events.
	if m := mergeSpans([]span{daySpan(1, 3), daySpan(3, 5), daySpan(7, 8)}); len(m) != 2 || !m[0].to.Equal(dayTime(5)) {
		t.Fatalf("merged %v", m)
	}
}

func TestGenerationsFollowEveryDay(t *testing.T) {
	s := fakeSnapshot(0, 7)
	g := s.gen(3, 0)
	s.days[5] = "v2"
	if s.gen(3, 0) == g || s.gen(1, 0) != fakeSnapshot(0, 7).gen(1, 0) {
		t.Fatal("a day's change must change its ancestors' generations, and only theirs")
	}
	if s.gen(2, 5) != "" {
		t.Fatal("a block without events has no generation")
	}
	for _, tm := range []time.Time{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)} {
		if d := dayOf(tm); !dayTime(d).Equal(tm.Truncate(24 * time.Hour)) {
			t.Fatalf("dayOf(%s) = %d", tm, d)
		}
	}
}

// TestRollupFiltersKeepTheTenant: a customer's filter on rollup documents
// is its own tenant, for every cube, whatever it asks; only an admin's
// view of every customer reads the all-customers documents.
func TestRollupFiltersKeepTheTenant(t *testing.T) {
	customer := Principal{Name: "a", Tenant: "acme"}
	admin := Principal{Name: "root", Admin: true}
	for _, c := range cubes {
		for _, q := range []Query{{}, {Tenant: "globex"}, {Bots: true, Type: "video", Source: "app"}} {
			f := mustJSON(scopeOf(customer, q, false).rollup(c))
			if !strings.Contains(string(f), `{"term":{"tenant":"acme"}}`) || strings.Contains(string(f), "globex") || strings.Contains(string(f), `"all"`) {
				t.Fatalf("%s: a customer's rollup filter is %s", c.name, f)
			}
		}
		all := string(mustJSON(scopeOf(admin, Query{}, false).rollup(c)))
		if c.assets == strings.Contains(all, `"rollup.level":"all"`) || strings.Contains(all, `"tenant"`) {
			t.Fatalf("%s: an admin's filter of all customers is %s", c.name, all)
		}
		one := string(mustJSON(scopeOf(admin, Query{Tenant: "globex"}, false).rollup(c)))
		if !strings.Contains(one, `{"term":{"tenant":"globex"}}`) {
			t.Fatalf("%s: an admin's filter of one customer is %s", c.name, one)
		}
	}
	var v []map[string]map[string]any
	_ = json.Unmarshal(mustJSON(scopeOf(customer, Query{Type: "video", Bots: true}, false).rollup(cubeViewers)), &v)
	if len(v) != 2 || v[1]["term"]["rollup.vkey"] != "video|*|all" {
		t.Fatalf("viewers filter %v", v)
	}
}

func TestRollupPrefixMustNotMatchTheEvents(t *testing.T) {
	for _, c := range []struct {
		index, prefix string
		ok            bool
	}{
		{"leasehold-events-*", "leasehold-rollups", true},
		{"leasehold-*", "leasehold-rollups", false},
		{"leasehold-demo-*", "leasehold-demo-rollups", false},
		{"leasehold-events-*", "Leasehold", false},
		{"leasehold-events-*", "a,b", false},
	} {
		if err := checkRollupPrefix(c.index, c.prefix); (err == nil) != c.ok {
			t.Errorf("index %s, prefix %s: %v", c.index, c.prefix, err)
		}
	}
}
