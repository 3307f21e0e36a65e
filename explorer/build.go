package explorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// builder keeps the rollups current: in each pass it builds the blocks of
// finished days (before today, by Config.Now) that have no current
// rollup, day blocks from the events and larger blocks from the blocks
// of the cube's level below. A day is built once its fingerprint has not changed for the
// settle time, so a day that is still receiving events (late CloudFront
// logs, a backfill) is read from its events meanwhile instead of being
// rebuilt after every write.
//
// Several builders (explorers) may run against one cluster: documents
// have deterministic ids, a block's record is replaced with a conditional
// write (the loser's documents are swept later), and readers only use a
// block through its record. One is enough.
type builder struct {
	r        *rollups
	settle   time.Duration
	interval time.Duration
	now      func() time.Time // decides which days are finished
	log      *zap.Logger

	// Owned by the goroutine that runs passes.
	ready     bool
	seen      map[day]seenFP
	lastSweep time.Time
}

type seenFP struct {
	fp    string
	since time.Time // wall clock
}

// BuildStats says what a pass of the rollup builder did.
type BuildStats struct {
	Blocks  int   // blocks built
	Docs    int64 // rollup documents written
	Deleted int   // replaced generations deleted
	Waiting int   // finished days left for a later pass: changed within the settle time
}

// oldGrace is how long a replaced generation's documents are kept: a
// reader's snapshot may name it for up to its TTL.
const oldGrace = time.Minute

// compositePage is the buckets asked per page of a composite aggregation
// (below the default search.max_buckets, 65,535): each page runs the
// query again, so pages are large.
const compositePage = 30000

// viewersPage is the page of each of the sixteen viewer counts of one
// search: together below search.max_buckets.
const viewersPage = 3000

func newBuilder(r *rollups, settle, interval time.Duration, now func() time.Time, log *zap.Logger) *builder {
	return &builder{r: r, settle: settle, interval: interval, now: now, log: log, seen: map[day]seenFP{}}
}

// run makes passes every interval until ctx ends. A failed pass is
// logged and retried at the next interval.
func (b *builder) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := b.pass(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.log.Warn("rollup pass failed", zap.Error(err))
		case st.Blocks > 0 || st.Deleted > 0:
			b.log.Info("rollups built", zap.Int("blocks", st.Blocks), zap.Int64("docs", st.Docs), zap.Int("deleted", st.Deleted),
				zap.Int("waiting_days", st.Waiting), zap.Duration("took", time.Since(start)))
		}
		t.Reset(b.interval)
	}
}

// pass builds every block that can be built now. It blocks until done or
// ctx ends.
func (b *builder) pass(ctx context.Context) (BuildStats, error) {
	var st BuildStats
	if !b.ready {
		if err := b.install(ctx); err != nil {
			return st, err
		}
		b.ready = true
	}
	snap := b.r.reload(ctx, 0)
	if !snap.known {
		return st, errors.New("explorer: rollups: the indices' fingerprints could not be read")
	}
	// Every write up to the fingerprints just read becomes searchable, so
	// a block built now holds at least what its generation names.
	if _, _, err := b.r.st.call(ctx, http.MethodPost, "/"+escapeIndices(b.r.st.raw)+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil); err != nil {
		return st, fmt.Errorf("refresh events: %w", err)
	}
	wall := time.Now()
	for d, fp := range snap.days {
		if s, ok := b.seen[d]; !ok || s.fp != fp {
			b.seen[d] = seenFP{fp: fp, since: wall}
		}
	}
	for d := range b.seen {
		if _, ok := snap.days[d]; !ok {
			delete(b.seen, d)
		}
	}
	today := dayOf(b.now())
	states := maps.Clone(snap.states)
	if states == nil {
		states = map[blockID]blockState{}
	}
	current := func(id blockID, gen string) bool {
		s, ok := states[id]
		return gen == "" || ok && s.Gen == gen
	}
	built := 0
	for _, c := range cubes {
		if c.topOf != nil {
			// A top block is made from its full cube's block of the same
			// days, once that is current.
			for _, k := range c.levels {
				for i := (today >> k) - 1; i >= snap.first>>k; i-- {
					id := blockID{cube: c.name, level: k, idx: i}
					gen := snap.gen(k, i)
					if current(id, gen) || !current(blockID{cube: c.topOf.name, level: k, idx: i}, gen) {
						continue
					}
					n, err := b.build(ctx, c, id, gen, states)
					if err != nil {
						return st, err
					}
					st.Blocks++
					st.Docs += n
				}
			}
			continue
		}
		for d := min(today-1, snap.last); d >= snap.first; d-- {
			id := blockID{cube: c.name, level: 0, idx: d}
			gen := snap.gen(0, d)
			if current(id, gen) {
				continue
			}
			if wall.Sub(b.seen[d].since) < b.settle {
				if c == cubes[0] {
					st.Waiting++
				}
				continue
			}
			n, err := b.build(ctx, c, id, gen, states)
			if err != nil {
				return st, err
			}
			st.Blocks++
			st.Docs += n
			built++
		}
		for _, k := range c.levels {
			if k == 0 {
				continue
			}
		blocks:
			for i := (today >> k) - 1; i >= snap.first>>k; i-- {
				id := blockID{cube: c.name, level: k, idx: i}
				gen := snap.gen(k, i)
				if current(id, gen) {
					continue
				}
				for _, ch := range c.children(id) {
					if !current(ch, snap.gen(ch.level, ch.idx)) {
						continue blocks // a part is not built yet
					}
				}
				n, err := b.build(ctx, c, id, gen, states)
				if err != nil {
					return st, err
				}
				st.Blocks++
				st.Docs += n
			}
		}
	}
	deleted, err := b.deleteOld(ctx, states)
	st.Deleted = deleted
	if err != nil {
		return st, err
	}
	if st.Blocks > 0 || deleted > 0 {
		b.r.invalidate()
	}
	if time.Since(b.lastSweep) > time.Hour {
		if err := b.sweep(ctx, states); err != nil {
			return st, err
		}
		b.lastSweep = time.Now()
	}
	return st, nil
}

// install creates the rollup indices' template and the records' index.
func (b *builder) install(ctx context.Context) error {
	m := b.r.st.b.Mappings()
	props, _ := m["properties"].(map[string]any)
	if props == nil {
		return errors.New("explorer: backend mappings have no properties")
	}
	kw := map[string]any{"type": "keyword"}
	props["rollup"] = map[string]any{"type": "object", "dynamic": false, "properties": map[string]any{
		"cube": kw, "level": kw, "key": kw, "vkey": kw, "built": map[string]any{"type": "date"}, "rest": map[string]any{"type": "long"},
	}}
	props["viewers"] = map[string]any{"type": "long"}
	// rollup.rest came with the top cubes: indices made from an older
	// template get it too.
	if _, _, err := b.r.st.call(ctx, http.MethodPut, "/"+escapeIndices(b.r.dataPattern())+"/_mapping?ignore_unavailable=true&allow_no_indices=true",
		obj{"properties": obj{"rollup": obj{"properties": obj{"rest": obj{"type": "long"}}}}}); err != nil {
		return fmt.Errorf("rollup mapping: %w", err)
	}
	tmpl := obj{"index_patterns": []string{b.r.dataPattern()}, "priority": 250, "template": obj{
		"settings": obj{"index": obj{"number_of_shards": 1, "auto_expand_replicas": "0-1", "refresh_interval": "30s"}},
		"mappings": m,
	}}
	if _, _, err := b.r.st.call(ctx, http.MethodPut, "/_index_template/"+url.PathEscape(b.r.prefix), tmpl); err != nil {
		return fmt.Errorf("rollup template: %w", err)
	}
	state := obj{"settings": obj{"index": obj{"number_of_shards": 1, "auto_expand_replicas": "0-1"}}, "mappings": obj{"dynamic": false, "properties": obj{
		"id": kw, "ns": kw, "cube": kw, "level": obj{"type": "integer"}, "idx": obj{"type": "long"}, "gen": kw, "key": kw,
		"docs": obj{"type": "long"}, "built": obj{"type": "date"},
	}}}
	_, _, err := b.r.st.call(ctx, http.MethodPut, "/"+url.PathEscape(b.r.stateIndex()), state)
	if err != nil && !isStatus(err, http.StatusBadRequest) { // 400: it exists
		return fmt.Errorf("rollup records: %w", err)
	}
	return nil
}

// rollupDoc is one rollup document before it is written.
type rollupDoc struct {
	level  string         // tenant, all or asset
	time   time.Time      // event_time
	fields map[string]any // dotted field → value (dimensions, tenant, viewers, vkey)
	count  int64          // events (_doc_count)
	bytes  float64        // their bytes
}

// build computes block id of cube c at generation gen, writes its
// documents and its record, and notes the record in states.
func (b *builder) build(ctx context.Context, c *cube, id blockID, gen string, states map[blockID]blockState) (int64, error) {
	var docs []rollupDoc
	var err error
	first, end := id.days()
	switch {
	case c.viewers:
		docs, err = b.viewerDocs(ctx, first)
	case c.topOf != nil:
		docs, err = b.topDocs(ctx, c, states[blockID{cube: c.topOf.name, level: id.level, idx: id.idx}].Key, dayTime(first))
	case id.level == 0:
		docs, err = b.dayDocs(ctx, c, first)
	default:
		var keys []string
		for _, part := range c.children(id) {
			if s, ok := states[part]; ok && s.Gen != "" {
				keys = append(keys, s.Key)
			}
		}
		docs, err = b.mergedDocs(ctx, c, dayTime(first), keys)
	}
	if err != nil {
		return 0, fmt.Errorf("rollup %s: %w", id, err)
	}
	key := b.r.key(id, gen)
	index := b.r.dataIndex(first)
	if err := b.write(ctx, index, key, c, docs); err != nil {
		return 0, fmt.Errorf("rollup %s: %w", id, err)
	}
	old, had := states[id]
	rec := blockState{ID: b.r.ns + "/" + id.String(), NS: b.r.ns, Cube: c.name, Level: id.level, Idx: id.idx, Gen: gen, Key: key, Docs: int64(len(docs)), Built: time.Now().UTC(), seqNo: -1}
	if had {
		rec.Old = append(rec.Old, old.Old...)
		if old.Key != "" && old.Key != key {
			rec.Old = append(rec.Old, oldKey{Key: old.Key, Since: time.Now().UTC()})
		}
	}
	if err := b.putState(ctx, &rec, old, had); err != nil {
		if isStatus(err, http.StatusConflict) {
			// Another builder recorded this block meanwhile: its record
			// stands; ours is read again at the next pass.
			b.log.Debug("rollup record changed by another builder", zap.String("block", id.String()))
			delete(states, id)
			return int64(len(docs)), nil
		}
		return 0, fmt.Errorf("rollup %s: record: %w", id, err)
	}
	states[id] = rec
	b.log.Debug("rollup built", zap.String("block", id.String()), zap.String("from", dayTime(first).Format(time.DateOnly)),
		zap.String("to", dayTime(end-1).Format(time.DateOnly)), zap.Int("docs", len(docs)))
	return int64(len(docs)), nil
}

// putState writes rec, on condition that the record is still old (or,
// when there was none, that there is none).
func (b *builder) putState(ctx context.Context, rec *blockState, old blockState, had bool) error {
	q := "?refresh=true&op_type=create"
	if had {
		q = fmt.Sprintf("?refresh=true&if_seq_no=%d&if_primary_term=%d", old.seqNo, old.primaryTerm)
	}
	n, _, err := b.r.st.call(ctx, http.MethodPut, "/"+url.PathEscape(b.r.stateIndex())+"/_doc/"+url.PathEscape(rec.ID)+q, rec)
	if err != nil {
		return err
	}
	rec.seqNo, rec.primaryTerm = int64(n.num("_seq_no")), int64(n.num("_primary_term"))
	return nil
}

// composite pages through a composite aggregation over indices with
// query, calling fn with each page's buckets.
func (b *builder) composite(ctx context.Context, indices string, query obj, sources []obj, sub obj, fn func([]node)) error {
	return b.compositeAfter(ctx, indices, query, sources, sub, nil, compositePage, fn)
}

// compositeAfter is composite from the page after the key after (nil: the
// first page).
func (b *builder) compositeAfter(ctx context.Context, indices string, query obj, sources []obj, sub obj, after json.RawMessage, size int, fn func([]node)) error {
	for {
		comp := obj{"size": size, "sources": sources}
		if after != nil {
			comp["after"] = after
		}
		agg := obj{"composite": comp}
		if sub != nil {
			agg["aggs"] = sub
		}
		n, _, err := b.r.st.call(ctx, http.MethodPost, "/"+escapeIndices(indices)+"/_search?ignore_unavailable=true&allow_no_indices=true&request_cache=false",
			obj{"size": 0, "track_total_hits": false, "query": query, "aggs": obj{"c": agg}})
		if err != nil {
			return err
		}
		c := n.agg("c")
		buckets := c.buckets()
		fn(buckets)
		after = c["after_key"]
		if len(buckets) < size || after == nil {
			return nil
		}
	}
}

func termsSource(name, field string) obj {
	return obj{name: obj{"terms": obj{"field": field, "missing_bucket": true}}}
}

// dayDocs aggregates the events of day d for cube c: one document per
// combination of tenant and dimensions, and (for cubes by customer) the
// sums over all customers.
func (b *builder) dayDocs(ctx context.Context, c *cube, d day) ([]rollupDoc, error) {
	sources := []obj{termsSource("tenant", "tenant")}
	if c.hourly {
		sources = append(sources, obj{"hour": obj{"date_histogram": obj{"field": "event_time", "fixed_interval": "1h"}}})
	}
	for i, f := range c.dims {
		sources = append(sources, termsSource(fmt.Sprintf("d%d", i), f))
	}
	level := "tenant"
	if c.assets {
		level = "asset"
	}
	var docs []rollupDoc
	all := map[string]*rollupDoc{}
	var order []string
	start := dayTime(d)
	query := span{start, dayTime(d + 1)}.query()
	if c.uses {
		query = boolFilter(query, uses)
	}
	err := b.composite(ctx, b.r.st.raw, query, sources, obj{"bytes": obj{"sum": obj{"field": "bytes"}}}, func(page []node) {
		for _, bk := range page {
			key := bk.sub("key")
			doc := rollupDoc{level: level, time: start, fields: map[string]any{}, count: bk.count(), bytes: bk.sub("bytes").value()}
			if c.hourly {
				doc.time = time.UnixMilli(int64(key.num("hour"))).UTC()
			}
			for i, f := range c.dims {
				if v := keyValue(key, fmt.Sprintf("d%d", i)); v != nil {
					doc.fields[f] = v
				}
			}
			if c.assets {
				if t := keyValue(key, "tenant"); t != nil {
					doc.fields["tenant"] = t
				}
				docs = append(docs, doc)
				continue
			}
			// The all-customers document of the same dimensions.
			k := doc.time.String() + "\x00" + string(mustJSON(doc.fields))
			a, ok := all[k]
			if !ok {
				a = &rollupDoc{level: "all", time: doc.time, fields: doc.fields}
				all[k] = a
				order = append(order, k)
			}
			a.count += doc.count
			a.bytes += doc.bytes
			if t := keyValue(key, "tenant"); t != nil {
				doc.fields = maps.Clone(doc.fields)
				doc.fields["tenant"] = t
				docs = append(docs, doc)
			}
		}
	})
	for _, k := range order {
		docs = append(docs, *all[k])
	}
	return docs, err
}

// topDocs makes a block of top cube c from its full cube's block of the
// same days (key fullKey): for every combination of the filter
// dimensions, the c.keep keys with the most events over all customers
// (ties: the smaller key first, as a terms aggregation orders them), and,
// when keys were left out, a document without a key holding the count of
// the largest of them in rollup.rest. Counts are exact: the full block
// holds every key.
func (b *builder) topDocs(ctx context.Context, c *cube, fullKey string, start time.Time) ([]rollupDoc, error) {
	if fullKey == "" {
		return nil, nil
	}
	query := terms("rollup.key", []string{fullKey})
	if !c.topOf.assets {
		query = boolFilter(query, term("rollup.level", "all"))
	}
	var sources []obj
	for i, f := range c.dims {
		sources = append(sources, termsSource(fmt.Sprintf("d%d", i), f))
	}
	groups := map[string][]rollupDoc{}
	var order []string
	err := b.composite(ctx, b.r.dataPattern(), query, sources, nil, func(page []node) {
		for _, bk := range page {
			key := bk.sub("key")
			doc := rollupDoc{level: "all", time: start, fields: map[string]any{}, count: bk.count()}
			group := map[string]any{}
			for i, f := range c.dims {
				if v := keyValue(key, fmt.Sprintf("d%d", i)); v != nil {
					doc.fields[f] = v
					if f != c.key {
						group[f] = v
					}
				}
			}
			if doc.fields[c.key] == nil {
				continue // no key (a direct visit has no page): never listed
			}
			g := string(mustJSON(group))
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], doc)
		}
	})
	if err != nil {
		return nil, err
	}
	var docs []rollupDoc
	for _, g := range order {
		list := groups[g]
		sort.Slice(list, func(i, j int) bool {
			if list[i].count != list[j].count {
				return list[i].count > list[j].count
			}
			return fmt.Sprint(list[i].fields[c.key]) < fmt.Sprint(list[j].fields[c.key])
		})
		if len(list) <= c.keep {
			docs = append(docs, list...)
			continue
		}
		docs = append(docs, list[:c.keep]...)
		rest := rollupDoc{level: "all", time: start, fields: map[string]any{"rollup.rest": list[c.keep].count}, count: 1}
		for f, v := range list[0].fields {
			if f != c.key {
				rest.fields[f] = v
			}
		}
		docs = append(docs, rest)
	}
	return docs, nil
}

// mergedDocs adds up the documents of the blocks a block is made of (their keys).
func (b *builder) mergedDocs(ctx context.Context, c *cube, start time.Time, keys []string) ([]rollupDoc, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	sources := []obj{termsSource("level", "rollup.level"), termsSource("tenant", "tenant")}
	for i, f := range c.dims {
		sources = append(sources, termsSource(fmt.Sprintf("d%d", i), f))
	}
	var docs []rollupDoc
	err := b.composite(ctx, b.r.dataPattern(), terms("rollup.key", keys), sources, obj{"bytes": obj{"sum": obj{"field": "bytes"}}}, func(page []node) {
		for _, bk := range page {
			key := bk.sub("key")
			doc := rollupDoc{level: key.str("level"), time: start, fields: map[string]any{}, count: bk.count(), bytes: bk.sub("bytes").value()}
			if t := keyValue(key, "tenant"); t != nil {
				doc.fields["tenant"] = t
			}
			for i, f := range c.dims {
				if v := keyValue(key, fmt.Sprintf("d%d", i)); v != nil {
					doc.fields[f] = v
				}
			}
			docs = append(docs, doc)
		}
	})
	return docs, err
}

// viewerDocs counts day d's distinct viewers for every combination of
// the filters: each customer or all, each asset type or all, each source
// or all, people only or everyone. The sixteen counts are sibling
// aggregations of one search (one pass over the day's events); a
// combination with more buckets than a page is paged on its own.
func (b *builder) viewerDocs(ctx context.Context, d day) ([]rollupDoc, error) {
	start := dayTime(d)
	split := []struct{ name, field string }{{"tenant", "tenant"}, {"type", "asset.type"}, {"source", "source"}}
	type combo struct {
		bots    string
		mask    int
		sources []obj
	}
	var combos []combo
	aggs := obj{}
	for _, bots := range []string{"people", "all"} {
		for mask := range 1 << len(split) {
			c := combo{bots: bots, mask: mask}
			for i, sp := range split {
				if mask&(1<<i) != 0 {
					// Absent values (no customer, no type) are left out:
					// no filter selects them.
					c.sources = append(c.sources, obj{sp.name: obj{"terms": obj{"field": sp.field}}})
				}
			}
			inner := obj{"v": distinct("client_ip")}
			if len(c.sources) > 0 {
				inner = obj{"c": obj{"composite": obj{"size": viewersPage, "sources": c.sources}, "aggs": obj{"v": distinct("client_ip")}}}
			}
			f := obj{"match_all": obj{}}
			if bots == "people" {
				f = term("bot", false)
			}
			aggs[fmt.Sprintf("%s%d", bots, mask)] = filterAgg(f, inner)
			combos = append(combos, c)
		}
	}
	query := span{start, dayTime(d + 1)}.query()
	n, _, err := b.r.st.call(ctx, http.MethodPost, "/"+escapeIndices(b.r.st.raw)+"/_search?ignore_unavailable=true&allow_no_indices=true&request_cache=false",
		obj{"size": 0, "track_total_hits": false, "query": query, "aggs": aggs})
	if err != nil {
		return nil, err
	}
	var docs []rollupDoc
	emit := func(c combo, key node, v float64) {
		fields := map[string]any{"viewers": v}
		vk := [3]string{"*", "*", c.bots}
		level := "all"
		for i, sp := range split {
			if c.mask&(1<<i) == 0 {
				continue
			}
			val := key.str(sp.name)
			switch sp.name {
			case "tenant":
				fields["tenant"], level = val, "tenant"
			case "type":
				vk[0] = val
			case "source":
				vk[1] = val
			}
		}
		fields["rollup.vkey"] = vk[0] + "|" + vk[1] + "|" + vk[2]
		docs = append(docs, rollupDoc{level: level, time: start, fields: fields, count: 1})
	}
	for _, c := range combos {
		a := n.agg(fmt.Sprintf("%s%d", c.bots, c.mask))
		if len(c.sources) == 0 {
			emit(c, nil, a.sub("v").value())
			continue
		}
		page := a.sub("c").buckets()
		for _, bk := range page {
			emit(c, bk.sub("key"), bk.sub("v").value())
		}
		after := a.sub("c")["after_key"]
		if len(page) < viewersPage || after == nil {
			continue
		}
		q := query
		if c.bots == "people" {
			q = boolFilter(query, term("bot", false))
		}
		var rest []node
		sources := c.sources
		err := b.compositeAfter(ctx, b.r.st.raw, q, sources, obj{"v": distinct("client_ip")}, after, viewersPage, func(p []node) { rest = append(rest, p...) })
		if err != nil {
			return nil, err
		}
		for _, bk := range rest {
			emit(c, bk.sub("key"), bk.sub("v").value())
		}
	}
	return docs, nil
}

// keyValue is a composite key's value (nil for a missing bucket).
func keyValue(key node, name string) any {
	raw, ok := key[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// write bulk-indexes docs with key into index and makes them searchable.
func (b *builder) write(ctx context.Context, index, key string, c *cube, docs []rollupDoc) error {
	var buf bytes.Buffer
	built := time.Now().UTC().Format(time.RFC3339)
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		n, _, err := b.r.st.call(ctx, http.MethodPost, "/_bulk", buf.Bytes())
		buf.Reset()
		if err != nil {
			return err
		}
		if n.str("errors") == "true" {
			for _, it := range n.arr("items") {
				if e := it.sub("index").sub("error"); e != nil {
					return fmt.Errorf("bulk: %s: %s", e.str("type"), e.str("reason"))
				}
			}
			return errors.New("bulk: some documents failed")
		}
		return nil
	}
	for _, d := range docs {
		src := map[string]any{}
		for f, v := range d.fields {
			setPath(src, f, v)
		}
		setPath(src, "rollup.cube", c.name)
		setPath(src, "rollup.level", d.level)
		setPath(src, "rollup.key", key)
		src["event_time"] = d.time.Format(time.RFC3339)
		// The id depends on what the document counts, not on when it was
		// written: two builders of one generation write the same documents.
		id := hash(key, string(mustJSON(src)))
		setPath(src, "rollup.built", built)
		if !c.viewers {
			src["_doc_count"] = d.count
			src["bytes"] = int64(d.bytes)
		}
		fmt.Fprintf(&buf, `{"index":{"_index":%q,"_id":%q}}`+"\n", index, id)
		buf.Write(mustJSON(src))
		buf.WriteByte('\n')
		if buf.Len() > 4<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	_, _, err := b.r.st.call(ctx, http.MethodPost, "/"+url.PathEscape(index)+"/_refresh?ignore_unavailable=true", nil)
	return err
}

// setPath sets a dotted field in a nested document ("geo.city").
func setPath(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	cur := doc
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
}

// deleteOld deletes the documents of replaced generations once no
// reader can still be using them, and updates their blocks' records.
func (b *builder) deleteOld(ctx context.Context, states map[blockID]blockState) (int, error) {
	var keys []string
	var ids []blockID
	cutoff := time.Now().Add(-max(oldGrace, 2*b.r.ttl))
	for id, s := range states {
		for _, o := range s.Old {
			if o.Since.Before(cutoff) {
				keys = append(keys, o.Key)
				ids = append(ids, id)
				break
			}
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	var all []string
	for _, id := range ids {
		for _, o := range states[id].Old {
			if o.Since.Before(cutoff) {
				all = append(all, o.Key)
			}
		}
	}
	if err := b.deleteWhere(ctx, terms("rollup.key", all)); err != nil {
		return 0, fmt.Errorf("delete replaced rollups: %w", err)
	}
	for _, id := range ids {
		old := states[id]
		rec := old
		rec.Old = nil
		for _, o := range old.Old {
			if !o.Since.Before(cutoff) {
				rec.Old = append(rec.Old, o)
			}
		}
		if err := b.putState(ctx, &rec, old, true); err != nil {
			if isStatus(err, http.StatusConflict) {
				delete(states, id)
				continue
			}
			return len(all), fmt.Errorf("rollup %s: record: %w", id, err)
		}
		states[id] = rec
	}
	return len(all), nil
}

// sweep deletes rollup documents that no record names and that are older
// than an hour: left by a builder that stopped between writing documents
// and recording them, or that lost a race to record a block.
func (b *builder) sweep(ctx context.Context, states map[blockID]blockState) error {
	keys := []string{}
	for _, s := range states {
		keys = append(keys, s.Key)
		for _, o := range s.Old {
			keys = append(keys, o.Key)
		}
	}
	q := obj{"bool": obj{"filter": []obj{{"range": obj{"rollup.built": obj{"lt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}}},
		"must_not": []obj{terms("rollup.key", keys)}}}
	if err := b.deleteWhere(ctx, q); err != nil {
		return fmt.Errorf("sweep rollups: %w", err)
	}
	return nil
}

// deleteWhere deletes the rollup documents matching query, a page of ids
// at a time (with bulk deletes: _delete_by_query needs the reindex
// module, which minimal distributions leave out).
func (b *builder) deleteWhere(ctx context.Context, query obj) error {
	for {
		n, _, err := b.r.st.call(ctx, http.MethodPost, "/"+escapeIndices(b.r.dataPattern())+"/_search?ignore_unavailable=true&allow_no_indices=true",
			obj{"size": 5000, "_source": false, "track_total_hits": false, "query": query})
		if err != nil {
			return err
		}
		hits := n.sub("hits").arr("hits")
		if len(hits) == 0 {
			return nil
		}
		var buf bytes.Buffer
		for _, h := range hits {
			fmt.Fprintf(&buf, `{"delete":{"_index":%q,"_id":%q}}`+"\n", h.str("_index"), h.str("_id"))
		}
		if _, _, err := b.r.st.call(ctx, http.MethodPost, "/_bulk?refresh=true", buf.Bytes()); err != nil {
			return err
		}
		if len(hits) < 5000 {
			return nil
		}
	}
}
