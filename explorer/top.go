package explorer

import (
	"context"
	"sort"

	"go.uber.org/zap"
)

// Top lists of all customers together (an admin's view of the top assets)
// would read every key's rollup documents: thousands of assets, for every
// combination of the filters, in every block. A top
// cube keeps, per block and combination of the filter dimensions, only
// the keys with the most events (cube.keep) and, where keys were left
// out, the count of the largest of them ("rest"). A ranking then takes
// three steps, and stays exact:
//
//  1. Candidates: the top m > n keys from the top cube (and the events of
//     days without a current block), with, per period, the sum B of the
//     rest counts of the blocks and combinations read, and the terms
//     aggregation's own error bound E.
//  2. Their exact counts, from the full cube restricted to exactly those
//     keys (as the figures of the listed assets are counted).
//  3. A key that is not a candidate has at most T + E events where the top
//     cube lists it (T: the m-th candidate's count there, 0 when fewer
//     than m came back) and at most B where it does not. So when the n-th
//     candidate's exact count is above T + E + B (or that bound is 0), the
//     candidates hold the exact top n, ranked by their exact counts (ties:
//     the smaller key first, as a terms aggregation ranks them).
//     Otherwise the ranking is asked from the full cube, as without top
//     cubes.
//
// Every filter of a ranked ask must be on the filter dimensions (event
// type, asset type, source, automated), which the top cube's documents
// carry, for B to cover the keys left out.

// topGain is how many times fewer documents a top cube's blocks must
// hold than its full cube's for a ranking to read it.
var topGain int64 = 3

// ranked is one key of a ranking and its number of events.
type ranked struct {
	key   string
	count int64
	// inexact: a shard may have left the key out of its top list, so
	// count may be short of its events (doc_count_error_upper_bound
	// above 0).
	inexact bool
}

// listShardSize is the shard_size of the lists' terms aggregations that
// set one, given the one they want (a hook for tests: the smaller, the
// likelier a shard leaves a listed key out).
var listShardSize = func(want int) int { return want }

// rank returns, for each period of q (the comparison's empty without
// one), the n keys of field with the most events of a, with their counts.
// shardSize is the terms aggregation's shard_size when the full cube (or
// the events) rank; m is the number of candidates asked from a top cube
// (more than n: the more, the likelier the ranking is concluded from
// them, and the more keys are counted exactly).
//
// recount, when not nil, counts the candidates exactly instead of a terms
// aggregation of the full cube (the top assets count their figures, which
// the page shows anyway).
func (s *Server) rank(ctx context.Context, q Query, a ask, field string, n, shardSize, m int, recount func([]string) (cur, prev map[string]int64, err error)) (cur, prev []ranked, err error) {
	if s.fromTop(ctx, a) {
		top := a.cube.top
		cur, prev, ok, err := s.rankFromTop(ctx, q, a, top, field, n, m, recount)
		if err != nil || ok {
			if ok {
				s.topRanked.Add(1)
			}
			return cur, prev, err
		}
		s.topFellBack.Add(1)
		s.log.Debug("top cube ranking not conclusive; ranking from the full cube", zap.String("cube", top.name), zap.Int("n", n))
	}
	a.body = obj{"size": 0, "aggs": perPeriod(q, obj{"top": obj{"terms": obj{"field": field, "size": n, "shard_size": listShardSize(shardSize), "show_term_doc_count_error": true}}})}
	res, err := s.run(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	list := func(n node) []ranked {
		var out []ranked
		for _, b := range n.sub("top").buckets() {
			out = append(out, ranked{key: b.key(), count: b.count(), inexact: !b.exactCount()})
		}
		return out
	}
	return list(res.agg("cur")), list(res.agg("prev")), nil
}

// fromTop reports whether a ranking of a starts from its cube's top cube:
// an admin's view of all customers, where the top cube's blocks hold at
// most a third of the full cube's documents. Where the blocks hold few
// keys (little traffic per block), the top cube is hardly smaller than
// the full one and its extra search costs more than it saves.
func (s *Server) fromTop(ctx context.Context, a ask) bool {
	sc := a.scope
	if a.cube == nil || a.cube.top == nil || s.rollups == nil || !sc.admin || sc.tenant != "" || sc.asset != "" || sc.byTenant {
		return false
	}
	snap := s.rollups.snapshot(ctx)
	p := snap.plan(a.cube.top, a.spans, false, false)
	return len(p.keys) > 0 && topGain*p.docs <= snap.plan(a.cube, a.spans, false, false).docs
}

// rankFromTop ranks from top cube top; ok is false when the candidates
// cannot be shown to hold the top n.
func (s *Server) rankFromTop(ctx context.Context, q Query, a ask, top *cube, field string, n, m int, recount func([]string) (cur, prev map[string]int64, err error)) (cur, prev []ranked, ok bool, err error) {
	cand := a
	cand.cube = top
	cand.body = obj{"size": 0, "aggs": perPeriod(q, obj{
		"top":  obj{"terms": obj{"field": field, "size": m, "shard_size": max(2*m, 200)}},
		"rest": obj{"sum": obj{"field": "rollup.rest"}},
	})}
	res, err := s.run(ctx, cand)
	if err != nil {
		return nil, nil, false, err
	}
	type period struct {
		keys  []string
		bound float64
	}
	periods := map[string]*period{}
	var ids []string
	for _, name := range []string{"cur", "prev"} {
		pn := res.agg(name)
		if pn == nil {
			continue
		}
		t := pn.sub("top")
		buckets := t.buckets()
		p := &period{bound: t.num("doc_count_error_upper_bound") + pn.sub("rest").value()}
		if len(buckets) >= m {
			p.bound += float64(buckets[len(buckets)-1].count())
		}
		for _, b := range buckets {
			p.keys = append(p.keys, b.key())
		}
		ids = union(ids, p.keys)
		periods[name] = p
	}
	exact := map[string]map[string]int64{"cur": {}, "prev": {}}
	if len(ids) > 0 && recount != nil {
		c, p, err := recount(ids)
		if err != nil {
			return nil, nil, false, err
		}
		exact["cur"], exact["prev"] = c, p
	} else if len(ids) > 0 {
		rc := a
		rc.filters = append(append([]obj{}, a.filters...), terms(field, ids))
		rc.body = obj{"size": 0, "aggs": perPeriod(q, obj{"ids": obj{"terms": obj{"field": field, "size": len(ids), "include": ids}}})}
		res, err := s.run(ctx, rc)
		if err != nil {
			return nil, nil, false, err
		}
		for name, m := range exact {
			for _, b := range res.agg(name).sub("ids").buckets() {
				m[b.key()] = b.count()
			}
		}
	}
	out := map[string][]ranked{}
	for name, p := range periods {
		var list []ranked
		for _, k := range p.keys {
			if c := exact[name][k]; c > 0 {
				list = append(list, ranked{key: k, count: c})
			}
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].count != list[j].count {
				return list[i].count > list[j].count
			}
			return list[i].key < list[j].key
		})
		if p.bound > 0 && (len(list) < n || float64(list[n-1].count) <= p.bound) {
			return nil, nil, false, nil
		}
		out[name] = list[:min(n, len(list))]
	}
	return out["cur"], out["prev"], true, nil
}
