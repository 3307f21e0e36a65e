// Package grid rounds times to a grid of instants: a worker polls its
// caught-up shards, runs its lease passes and adapts GOMAXPROCS on the
// instants of one grid, so that its periodic work wakes it once.
package grid

import "time"

// Grid is the instants Origin + n·Every, for every integer n. Every must
// be positive.
type Grid struct {
	Origin time.Time
	Every  time.Duration
}

// AtOrAfter returns the first instant of g at or after t.
func (g Grid) AtOrAfter(t time.Time) time.Time {
	r := t.Sub(g.Origin) % g.Every
	if r == 0 {
		return t
	}
	if r < 0 { // t before the origin
		r += g.Every
	}
	return t.Add(g.Every - r)
}

// Nearest returns the instant of g nearest to t (the later of two as
// near).
func (g Grid) Nearest(t time.Time) time.Time {
	up := g.AtOrAfter(t)
	if down := up.Add(-g.Every); t.Sub(down) < up.Sub(t) {
		return down
	}
	return up
}
