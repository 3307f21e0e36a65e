package explorer

import (
	"context"
	"strings"
	"time"
)

// Cell is exported for tests.
var Cell = cell

// Channel classifies a referring domain with app domains.
func Channel(appDomains []string, domain string) string {
	s := &Server{cfg: Config{AppDomains: appDomains}}
	return s.channel(domain)
}

// RollupPlan says how a search of the named cube over [from, to) is
// answered now: the rollup blocks it reads and the days it reads from
// events.
func (s *Server) RollupPlan(ctx context.Context, cubeName string, from, to time.Time, perDay bool) (blocks, eventDays []string) {
	if s.rollups == nil {
		return nil, nil
	}
	p := s.rollups.snapshot(ctx).plan(cubeNamed(cubeName), []span{{from, to}}, perDay, false)
	for _, k := range p.keys {
		blocks = append(blocks, k[:strings.LastIndexByte(k, '/')])
	}
	for _, sp := range p.raw {
		for d := sp.from; d.Before(sp.to); d = d.AddDate(0, 0, 1) {
			eventDays = append(eventDays, d.Format(time.DateOnly))
		}
	}
	return blocks, eventDays
}

// SetTopKeep sets how many keys the top cubes keep per block and
// combination of filters (rollups built before keep the old number), and
// how many times fewer documents than the full cube's they must hold to
// be read.
func SetTopKeep(n int, gain int64) {
	topGain = gain
	for _, c := range cubes {
		if c.topOf != nil {
			c.keep = n
		}
	}
}

// TopRankings counts the rankings answered from a top cube and those
// that were asked from the full cube after all.
func (s *Server) TopRankings() (fromTop, fellBack int64) {
	return s.topRanked.Load(), s.topFellBack.Load()
}

// AssetFigures counts the top-asset answers whose figures came from the
// ranking search itself, and those counted by a second search after it.
func (s *Server) AssetFigures() (atOnce, apart int64) {
	return s.atOnce.Load(), s.atOnceFellBack.Load()
}

// SetFiguresAtOnce turns off (or on) taking the top assets' figures from
// their ranking search: off, they are always counted apart, as before.
func (s *Server) SetFiguresAtOnce(on bool) { s.figuresAtOnce = on }

// SetAtOnceShardSize sets the shard_size of topAssetsAtOnce's ranking
// (for its fallback to be taken); it returns the function that restores
// the default.
func SetAtOnceShardSize(n int) (restore func()) {
	old := atOnceSizes
	atOnceSizes = func(rn int) (int, int) { return 2 * rn, n }
	return func() { atOnceSizes = old }
}

// SetSourcesSites sets how many referring sites /api/sources asks for;
// the returned func restores it.
func SetSourcesSites(n int) (restore func()) {
	old := sourcesSites
	sourcesSites = n
	return func() { sourcesSites = old }
}

// SetBeforeSize makes the highlights ask n earlier assets of each site,
// however many candidates there are; it returns the undo.
func SetBeforeSize(n int) func() {
	old := beforeSize
	beforeSize = func(int) int { return n }
	return func() { beforeSize = old }
}

// BeforeFellBack counts the highlights' searches of earlier uses asked
// again restricted to the candidates.
func (s *Server) BeforeFellBack() int64 { return s.beforeFellBack.Load() }

// SetListShardSize makes the lists' terms aggregations that set a
// shard_size ask n (OpenSearch raises it to the list's size); it returns
// the undo.
func SetListShardSize(n int) func() {
	old := listShardSize
	listShardSize = func(int) int { return n }
	return func() { listShardSize = old }
}

// ListRecounts counts the listed current figures counted again because
// their bucket may have missed a shard.
func (s *Server) ListRecounts() int64 { return s.listRecounts.Load() }
