package explorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Rollups: pre-computed counts of finished days, so that a view of 90 days
// of ten million events reads thousands of documents instead of millions.
//
// Time is cut into blocks of 2^k whole UTC days (k among the cube's
// levels, e.g. 0, 2, 4, 6), aligned on multiples of 2^k days since
// 1970-01-01; any period of whole days is a few such blocks. A block of a
// cube is built from the events of its days (level 0) or from the blocks
// of its cube's next lower level (level k > 0) and is current while the
// events it was built from have not changed. That is decided from
// fingerprints, never from clocks: a day's fingerprint is taken from the
// indices that hold its events (their uuid and each primary shard's
// maximum sequence number, which every write, overwrite or delete moves);
// a block's generation is a hash of its days' fingerprints.
// A late CloudFront line, a backfill or a dead-letter replay that adds to
// an old day changes that day's fingerprint, so its blocks stop being
// current at once: searches read that day's events instead until the
// builder has rebuilt the blocks. Figures are therefore the same from
// rollups as from events at every moment (within the few seconds a
// snapshot of the fingerprints is reused: Config.RollupCheck).
//
// Rollup documents live in monthly indices <prefix>-d-YYYY.MM (by block
// start) with their own template; which block generations are complete is
// recorded in <prefix>-state, one document per block, written after the
// block's documents are searchable. Readers use a block only through that
// record, so a half-written block is never read.

// day is a UTC day number: days since 1970-01-01.
type day = int64

func dayOf(t time.Time) day {
	u := t.Unix()
	if u < 0 {
		return (u - 86399) / 86400
	}
	return u / 86400
}

func dayTime(d day) time.Time { return time.Unix(d*86400, 0).UTC() }

// span is a time range [from, to); a zero from or to leaves that side open.
type span struct{ from, to time.Time }

// query matches events (or rollup documents) whose event_time is in sp.
func (sp span) query() obj {
	r := obj{}
	if !sp.from.IsZero() {
		r["gte"] = sp.from.Format(time.RFC3339)
	}
	if !sp.to.IsZero() {
		r["lt"] = sp.to.Format(time.RFC3339)
	}
	if len(r) == 0 {
		return obj{"match_all": obj{}}
	}
	return obj{"range": obj{"event_time": r}}
}

// spansQuery matches events in any of spans. No spans match nothing (a
// bool query without clauses would match every document).
func spansQuery(spans []span) obj {
	if len(spans) == 0 {
		return matchNone()
	}
	qs := make([]obj, len(spans))
	for i, sp := range spans {
		qs[i] = sp.query()
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return obj{"bool": obj{"should": qs, "minimum_should_match": 1}}
}

type blockID struct {
	cube  string
	level int
	idx   int64
}

func (b blockID) String() string { return fmt.Sprintf("%s/%d/%d", b.cube, b.level, b.idx) }

func (b blockID) days() (first, end day) { return b.idx << b.level, (b.idx + 1) << b.level }

// blockState is a block's record in <prefix>-state.
type blockState struct {
	ID    string    `json:"id"` // <ns>/<cube>/<level>/<idx>
	NS    string    `json:"ns"` // the events' index pattern, hashed
	Cube  string    `json:"cube"`
	Level int       `json:"level"`
	Idx   int64     `json:"idx"`
	Gen   string    `json:"gen"`  // generation the documents were built from
	Key   string    `json:"key"`  // rollup.key of its documents
	Docs  int64     `json:"docs"` // rollup documents
	Built time.Time `json:"built"`
	// Old are keys of replaced generations, deleted once no reader's
	// snapshot can still name them.
	Old []oldKey `json:"old,omitempty"`

	seqNo, primaryTerm int64 // of the record, for a conditional update; -1 when new
}

type oldKey struct {
	Key   string    `json:"key"`
	Since time.Time `json:"since"`
}

// key names the documents of block id at generation gen.
func (r *rollups) key(id blockID, gen string) string { return r.ns + "/" + id.String() + "/" + gen }

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// snapshot is what the rollup layer knows at one moment: the fingerprint
// of each day's events and the recorded blocks. It is not modified after
// it is published, except by the builder on its own copy.
type snapshot struct {
	at     time.Time // wall clock of the reading
	known  bool      // fingerprints were read; false: read events only
	days   map[day]string
	first  day // days with events: first..last (first > last: none)
	last   day
	states map[blockID]blockState
}

// gen is the generation of a block: a hash of its days' fingerprints, ""
// when none of its days holds events.
func (s *snapshot) gen(level int, idx int64) string {
	if level == 0 {
		fp, ok := s.days[idx]
		if !ok {
			return ""
		}
		return hash("day", fp)
	}
	first, end := blockID{level: level, idx: idx}.days()
	if end <= s.first || first > s.last {
		return ""
	}
	l, r := s.gen(level-1, 2*idx), s.gen(level-1, 2*idx+1)
	if l == "" && r == "" {
		return ""
	}
	return hash(l, r)
}

// current returns the block's record when it was built from the events
// as they are now.
func (s *snapshot) current(id blockID) (blockState, bool) {
	st, ok := s.states[id]
	if !ok || st.Gen == "" {
		return st, false
	}
	return st, st.Gen == s.gen(id.level, id.idx)
}

// plan says where a search finds its events: rollup keys to read, and
// spans to read from the events themselves.
type plan struct {
	keys []string
	raw  []span
	docs int64 // rollup documents of the blocks read
}

// plan covers spans with the largest current blocks of c (day blocks only
// when the answer is per day), and events for the rest: days without a
// current block (today, a day changed since its block was built, a day
// not yet built) and anything after the days the snapshot knows.
//
// Before the first day with events (a comparison period older than the
// data, "everything before the period") there is nothing to read, so
// nothing is asked: the events' pattern would send the search to every
// events index, whose shards each parse the query and answer empty
// aggregations (at 90 daily indices, two thirds of the highlights' search
// of sites seen before the period). An index holding older events that
// appears after the snapshot was read is seen with the next one, after
// at most Config.RollupCheck, as a late event on a rolled-up day is. A
// snapshot that knows no events at all reads events everywhere.
func (s *snapshot) plan(c *cube, spans []span, perDay, hourly bool) plan {
	var p plan
	if s == nil || !s.known || c == nil || (hourly && !c.hourly) {
		p.raw = spans
		return p
	}
	levels := c.levels
	if perDay || len(levels) == 0 {
		levels = []int{0}
	}
	for _, sp := range spans {
		a, b := day(-1<<40), day(1<<40)
		if !sp.from.IsZero() {
			a = dayOf(sp.from)
			if !dayTime(a).Equal(sp.from) {
				p.raw = append(p.raw, sp) // not whole days: never for the API's periods
				continue
			}
		}
		if !sp.to.IsZero() {
			b = dayOf(sp.to)
			if !dayTime(b).Equal(sp.to) {
				p.raw = append(p.raw, sp)
				continue
			}
		}
		if s.first > s.last {
			p.raw = append(p.raw, sp) // no events known
			continue
		}
		lo, hi := max(a, s.first), min(b, s.last+1)
		if b <= s.first {
			continue // before every event
		}
		if lo >= hi {
			p.raw = append(p.raw, sp)
			continue
		}
		for d := lo; d < hi; {
			k := 0
			for _, l := range levels {
				if d%(1<<l) == 0 && d+(1<<l) <= hi {
					k = l
				}
			}
			s.cover(c, blockID{cube: c.name, level: k, idx: d >> k}, &p)
			d += 1 << k
		}
		if hi < b {
			p.raw = append(p.raw, span{from: dayTime(hi), to: sp.to})
		}
	}
	p.raw = mergeSpans(p.raw)
	return p
}

func (s *snapshot) cover(c *cube, id blockID, p *plan) {
	if s.gen(id.level, id.idx) == "" {
		return // no events on any of its days
	}
	if st, ok := s.current(id); ok {
		p.keys = append(p.keys, st.Key)
		p.docs += st.Docs
		return
	}
	if id.level > 0 {
		for _, ch := range c.children(id) {
			s.cover(c, ch, p)
		}
		return
	}
	p.raw = append(p.raw, span{from: dayTime(id.idx), to: dayTime(id.idx + 1)})
}

// mergeSpans joins spans that touch (they come in order).
func mergeSpans(in []span) []span {
	var out []span
	for _, sp := range in {
		if n := len(out); n > 0 && !out[n-1].to.IsZero() && out[n-1].to.Equal(sp.from) {
			out[n-1].to = sp.to
			continue
		}
		out = append(out, sp)
	}
	return out
}

// rollups reads (and, with a builder, writes) the rollups of one index
// pattern. It is safe for concurrent use.
type rollups struct {
	st      *store
	ns      string        // hash of the events' index pattern: explorers of other patterns may share the prefix
	prefix  string        // rollup indices: <prefix>-d-YYYY.MM; records: <prefix>-state
	ttl     time.Duration // how long a snapshot is reused (wall clock)
	log     *zap.Logger
	loading atomic.Bool
	loadMu  sync.Mutex // one reading at a time; guards ranges, stateFP and states

	ranges  map[string]indexRange // raw index → its fingerprint and days
	stateFP string
	states  map[blockID]blockState

	mu  sync.Mutex
	cur *snapshot // guarded by mu
}

// indexRange is what is known of one raw index.
type indexRange struct {
	fp          string
	first, last day // days of its events; first > last when it has none
}

func newRollups(st *store, prefix string, ttl time.Duration, log *zap.Logger) *rollups {
	return &rollups{st: st, ns: hash("index", st.raw)[:8], prefix: prefix, ttl: ttl, log: log, ranges: map[string]indexRange{}}
}

func (r *rollups) dataPattern() string    { return r.prefix + "-d-*" }
func (r *rollups) stateIndex() string     { return r.prefix + "-state" }
func (r *rollups) dataIndex(d day) string { return r.prefix + "-d-" + dayTime(d).Format("2006.01") }

// snapshot returns a snapshot no older than the TTL, reading a new one
// when needed. While one request reads, the others use the previous one.
func (r *rollups) snapshot(ctx context.Context) *snapshot {
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if cur != nil && time.Since(cur.at) < r.ttl {
		return cur
	}
	if cur != nil && r.ttl > 0 && !r.loading.CompareAndSwap(false, true) {
		return cur // someone is reading a new one
	}
	if cur != nil && r.ttl > 0 {
		defer r.loading.Store(false)
	}
	return r.reload(ctx, r.ttl)
}

// reload reads a new snapshot and publishes it. A failure is logged and
// gives a snapshot that reads events only. A caller that waited while
// another read takes that reading instead when it began less than within
// before the call (within 0: after it, as fresh as a reading of its own):
// the six calls of a page view arriving at a new explorer, or after
// invalidate, read once rather than six times in a row.
func (r *rollups) reload(ctx context.Context, within time.Duration) *snapshot {
	asked := time.Now()
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if cur != nil && !cur.at.Before(asked.Add(-within)) {
		return cur
	}
	s, err := r.read(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("rollups unknown; reading events", zap.Error(err))
		}
		s = &snapshot{at: time.Now(), first: 1, last: 0}
	}
	if ce := r.log.Check(zap.DebugLevel, "rollup snapshot read"); ce != nil {
		ce.Write(zap.Duration("took", time.Since(s.at)), zap.Int("blocks", len(s.states)), zap.Bool("known", s.known))
	}
	r.mu.Lock()
	r.cur = s
	r.mu.Unlock()
	return s
}

// invalidate makes the next search read a new snapshot.
func (r *rollups) invalidate() {
	r.mu.Lock()
	r.cur = nil
	r.mu.Unlock()
}

// statsQuery asks for what fingerprints need: each index's uuid and its
// primary shards' maximum sequence number. Every write (index, overwrite,
// delete) takes the next sequence number; the document count would not do,
// as it moves when a refresh makes writes searchable, not when they happen.
const statsQuery = "/_stats/docs?level=shards&ignore_unavailable=true&allow_no_indices=true&expand_wildcards=open" +
	"&filter_path=indices.*.uuid,indices.*.shards.*.routing.primary,indices.*.shards.*.seq_no.max_seq_no"

type indexStats struct {
	UUID   string `json:"uuid"`
	Shards map[string][]struct {
		Routing struct {
			Primary bool `json:"primary"`
		} `json:"routing"`
		SeqNo struct {
			Max int64 `json:"max_seq_no"`
		} `json:"seq_no"`
	} `json:"shards"`
}

func (x indexStats) fingerprint() string {
	var b strings.Builder
	b.WriteString(x.UUID)
	ids := make([]string, 0, len(x.Shards))
	for id := range x.Shards {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, c := range x.Shards[id] {
			if c.Routing.Primary {
				fmt.Fprintf(&b, "/%s:%d", id, c.SeqNo.Max)
			}
		}
	}
	return b.String()
}

// read reads the fingerprints of the raw indices (and the days each one
// holds, for those that changed) and the block records (when they
// changed). Call with loadMu held.
func (r *rollups) read(ctx context.Context) (*snapshot, error) {
	at := time.Now()
	n, _, err := r.st.call(ctx, http.MethodGet, "/"+escapeIndices(r.st.raw+","+r.stateIndex()+"*")+statsQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("index stats: %w", err)
	}
	var stats map[string]indexStats
	_ = json.Unmarshal(n["indices"], &stats)
	stateFP := ""
	seen := map[string]bool{}
	changed := map[string]string{} // index → its new fingerprint
	for name, x := range stats {
		if name == r.stateIndex() {
			stateFP = x.fingerprint()
			continue
		}
		if strings.HasPrefix(name, r.prefix+"-") {
			continue // never our own indices (the configuration refuses a pattern that matches them)
		}
		seen[name] = true
		fp := x.fingerprint()
		if old, ok := r.ranges[name]; ok && old.fp == fp {
			continue
		}
		changed[name] = fp
	}
	days, err := r.indexDays(ctx, slices.Sorted(maps.Keys(changed)))
	if err != nil {
		return nil, err
	}
	for name, fp := range changed {
		r.ranges[name] = indexRange{fp: fp, first: days[name][0], last: days[name][1]}
	}
	for name := range r.ranges {
		if !seen[name] {
			delete(r.ranges, name)
		}
	}
	if stateFP != r.stateFP || r.states == nil {
		states, err := r.readStates(ctx)
		if err != nil {
			return nil, err
		}
		r.states, r.stateFP = states, stateFP
	}
	s := &snapshot{at: at, known: true, days: map[day]string{}, first: 1 << 40, last: -1 << 40, states: r.states}
	parts := map[day][]string{}
	for name, ir := range r.ranges {
		for d := ir.first; d <= ir.last; d++ {
			parts[d] = append(parts[d], name+"@"+ir.fp)
		}
	}
	for d, ps := range parts {
		sort.Strings(ps)
		s.days[d] = strings.Join(ps, " ")
		s.first, s.last = min(s.first, d), max(s.last, d)
	}
	return s, nil
}

// indexDays returns the first and last day of each index's events (first
// > last when it has none), in one request: a new explorer, or a new day's
// index, would otherwise wait for a search per index in a row. Min and max
// of a whole index come from its points' bounds, without reading
// documents.
func (r *rollups) indexDays(ctx context.Context, indices []string) (map[string][2]day, error) {
	out := map[string][2]day{}
	if len(indices) == 0 {
		return out, nil
	}
	var body bytes.Buffer
	for _, index := range indices {
		body.Write(mustJSON(obj{"index": index, "ignore_unavailable": true, "request_cache": false}))
		body.WriteByte('\n')
		body.Write(mustJSON(obj{"size": 0, "track_total_hits": false, "aggs": obj{"lo": obj{"min": obj{"field": "event_time"}}, "hi": obj{"max": obj{"field": "event_time"}}}}))
		body.WriteByte('\n')
	}
	n, _, err := r.st.call(ctx, http.MethodPost, "/_msearch", body.Bytes())
	if err != nil {
		return nil, fmt.Errorf("days of %d indices: %w", len(indices), err)
	}
	answers := n.arr("responses")
	if len(answers) != len(indices) {
		return nil, fmt.Errorf("days of %d indices: %d answers", len(indices), len(answers))
	}
	for i, a := range answers {
		if e := a.sub("error"); e != nil {
			return nil, fmt.Errorf("days of %s: %s: %s", indices[i], e.str("type"), e.str("reason"))
		}
		lo, hi := a.agg("lo").time(), a.agg("hi").time()
		if lo.IsZero() || hi.IsZero() {
			out[indices[i]] = [2]day{1, 0}
			continue
		}
		out[indices[i]] = [2]day{dayOf(lo), dayOf(hi)}
	}
	return out, nil
}

// readStates reads every block record.
func (r *rollups) readStates(ctx context.Context) (map[blockID]blockState, error) {
	out := map[blockID]blockState{}
	var after []any
	for {
		body := obj{"size": 5000, "seq_no_primary_term": true, "sort": []obj{{"id": "asc"}}, "track_total_hits": false,
			"query": term("ns", r.ns)}
		if after != nil {
			body["search_after"] = after
		}
		n, _, err := r.st.call(ctx, http.MethodPost, "/"+r.stateIndex()+"/_search?ignore_unavailable=true&allow_no_indices=true", body)
		if err != nil {
			return nil, fmt.Errorf("rollup records: %w", err)
		}
		hits := n.sub("hits").arr("hits")
		for _, h := range hits {
			var st blockState
			if err := json.Unmarshal(h["_source"], &st); err != nil || st.NS != r.ns {
				continue
			}
			st.seqNo, st.primaryTerm = int64(h.num("_seq_no")), int64(h.num("_primary_term"))
			out[blockID{cube: st.Cube, level: st.Level, idx: st.Idx}] = st
		}
		if len(hits) < 5000 {
			return out, nil
		}
		_ = json.Unmarshal(hits[len(hits)-1]["sort"], &after)
	}
}

// keepFresh reads a new snapshot every interval until ctx ends, so that
// searches find a fresh one.
func (r *rollups) keepFresh(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.reload(ctx, 0)
		}
	}
}
