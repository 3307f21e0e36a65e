package explorer

import (
	"context"
	"sync"
	"time"
)

// An asset's title, type and collection on the page are its newest
// event's catalog fields, as asset_lookup wrote them. They are asked for
// the assets a list shows only, after the list is known, and kept for
// titleTTL: a ranking that carried them (a top_hits aggregation in every
// asset bucket of every shard) cost three times the OpenSearch CPU of the
// ranking without them (at 10 million events, an admin's 30 days: 86 ms
// against 27 ms), while asking them for the few shown assets costs about
// half of the ranking alone, and a page shows the same assets again and
// again. The figures are counted afresh for every call; only these names
// may be titleTTL old (a renamed asset shows its new name within that
// time).
const titleTTL = 10 * time.Minute

// titleCacheMax bounds the titles kept: past it, the expired ones go, and
// all of them if none has expired.
const titleCacheMax = 100_000

// titleCache holds catalog fields by asset id. An asset id belongs to one
// customer, and only ids from a list already filtered to the caller's
// customers are looked up, so the cache needs no tenant of its own.
type titleCache struct {
	mu sync.Mutex
	m  map[string]titleEntry
}

type titleEntry struct {
	meta node // the newest document's _source (asset, asset_id)
	at   time.Time
}

// get returns the fresh entries of ids and the ids it lacks.
func (c *titleCache) get(ids []string, now time.Time) (map[string]node, []string) {
	out := make(map[string]node, len(ids))
	var missing []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if e, ok := c.m[id]; ok && now.Sub(e.at) < titleTTL {
			out[id] = e.meta
		} else {
			missing = append(missing, id)
		}
	}
	return out, missing
}

func (c *titleCache) put(found map[string]node, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]titleEntry{}
	}
	if len(c.m)+len(found) > titleCacheMax {
		for id, e := range c.m {
			if now.Sub(e.at) >= titleTTL {
				delete(c.m, id)
			}
		}
		if len(c.m)+len(found) > titleCacheMax {
			clear(c.m)
		}
	}
	for id, m := range found {
		c.m[id] = titleEntry{meta: m, at: now}
	}
}

// assetTitles returns the catalog fields of each of ids that has uses in
// q's periods (the lists' assets all have), from the cache where fresh and
// otherwise with one search for those it lacks.
func (s *Server) assetTitles(ctx context.Context, q Query, sc scopeSpec, ids []string) (map[string]node, error) {
	out, missing := s.titles.get(ids, time.Now())
	if len(missing) == 0 {
		return out, nil
	}
	agg := obj{"ids": obj{"terms": obj{"field": "asset_id", "size": len(missing), "include": missing}, "aggs": obj{"meta": assetMeta()}}}
	res, err := s.run(ctx, ask{cube: cubeAssets, spans: periodSpans(q), scope: sc, filters: []obj{uses, terms("asset_id", missing)},
		body: obj{"size": 0, "aggs": agg}})
	if err != nil {
		return nil, err
	}
	found := map[string]node{}
	for _, b := range res.agg("ids").buckets() {
		if m := b.sub("meta").source(); m != nil {
			found[b.key()] = m
			out[b.key()] = m
		}
	}
	s.titles.put(found, time.Now())
	return out, nil
}
