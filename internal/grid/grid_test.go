package grid

import (
	"testing"
	"time"
)

func TestRounding(t *testing.T) {
	origin := time.Date(2026, 12, 5, 0, 0, 0, 300*int(time.Millisecond), time.UTC)
	g := Grid{Origin: origin, Every: time.Second}
	ms := func(n int) time.Time { return origin.Add(time.Duration(n) * time.Millisecond) }
	for _, c := range []struct{ at, atOrAfter, nearest int }{
		{0, 0, 0},
		{1, 1000, 0},
		{499, 1000, 0},
		{500, 1000, 1000}, // a tie: the later
		{501, 1000, 1000},
		{-1, 0, 0},
		{-500, 0, 0},
		{-501, 0, -1000},
		{-2300, -2000, -2000},
		{7000, 7000, 7000},
	} {
		if got := g.AtOrAfter(ms(c.at)); !got.Equal(ms(c.atOrAfter)) {
			t.Errorf("AtOrAfter(%d ms) = %s, want %d ms", c.at, got.Sub(origin), c.atOrAfter)
		}
		if got := g.Nearest(ms(c.at)); !got.Equal(ms(c.nearest)) {
			t.Errorf("Nearest(%d ms) = %s, want %d ms", c.at, got.Sub(origin), c.nearest)
		}
	}
}
