package explorer

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestTitleCacheExpiresAndStaysBounded: a title is reused for titleTTL and
// asked again after it; past titleCacheMax entries the expired ones go,
// then all of them, so a long-running explorer's memory stays bounded.
func TestTitleCacheExpiresAndStaysBounded(t *testing.T) {
	var c titleCache
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	meta := func(title string) node { return node{"asset": json.RawMessage(`{"title":"` + title + `"}`)} }
	c.put(map[string]node{"a": meta("A"), "b": meta("B")}, t0)
	got, missing := c.get([]string{"a", "b", "c"}, t0.Add(titleTTL-time.Second))
	if got["a"].path("asset.title") != "A" || got["b"].path("asset.title") != "B" || len(missing) != 1 || missing[0] != "c" {
		t.Fatalf("fresh: %v, missing %v", got, missing)
	}
	if got, missing := c.get([]string{"a"}, t0.Add(titleTTL)); len(got) != 0 || len(missing) != 1 {
		t.Fatalf("expired: %v, missing %v; want a asked again", got, missing)
	}

	many := map[string]node{}
	for i := range titleCacheMax {
		many[fmt.Sprint("x", i)] = meta("X")
	}
	c.put(many, t0.Add(titleTTL)) // a and b have expired: they go
	if len(c.m) != titleCacheMax {
		t.Fatalf("%d titles kept, want %d", len(c.m), titleCacheMax)
	}
	c.put(map[string]node{"d": meta("D")}, t0.Add(titleTTL+time.Second)) // none expired: all go
	if len(c.m) != 1 || c.m["d"].meta.path("asset.title") != "D" {
		t.Fatalf("%d titles kept after overflowing", len(c.m))
	}
}
