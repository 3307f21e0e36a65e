package explorer

// A cube is one kind of rollup document: the events of a block of whole
// days counted per combination of its dimensions. A rollup document keeps
// the dimensions under the events' own field names, the number of events
// in OpenSearch's _doc_count field (which every bucket aggregation adds up
// instead of 1) and the sum of their bytes in bytes. So a search written
// for events gives the same counts, sums and distinct-value counts of a
// dimension over rollup documents of the right cube: the API's queries are
// the same for both, and one search reads rollups for the blocks that have
// a current one and events for the rest (see ask).
//
// Every cube keeps the four dimensions every view can filter on (asset
// type, source, automated or not, event type). The customer is a level
// rather than a dimension: a "tenant" document counts one customer's
// events (and carries the tenant field, so a customer's filter selects it
// as it selects the customer's events), an "all" document counts every
// customer's, so that an admin's view of all customers reads a few
// documents per block instead of one per customer. Cubes by asset have one
// level ("asset"): each document carries its asset's customer.
type cube struct {
	name    string   // with a version: part of every rollup key, so a changed cube is rebuilt, never mixed
	dims    []string // dimension fields besides tenant
	assets  bool     // by asset: dims hold asset_id; no all-customers level
	hourly  bool     // event_time is the hour (level 0 only); else the block's first day
	levels  []int    // the block levels built, ascending from 0: blocks of 2^k days for each k
	viewers bool     // the distinct-viewers cube (built and read in its own way)
	// uses: the cube counts uses only (views and downloads), for the
	// views that count nothing else; an ask without the uses filter reads
	// events instead.
	uses bool
	// topOf makes a top cube (see top.go): each of its blocks lists, for
	// every combination of the filter dimensions, only the keep keys (of
	// field key) with the most events in topOf's block of the same days,
	// for all customers together, and the count of the largest key left
	// out.
	topOf *cube
	key   string
	keep  int
	top   *cube // the full cube's top cube, if any
}

// filterDims are the dimensions of every cube: the scope's filters other
// than the customer and the asset apply to rollup documents as to events.
var filterDims = []string{"asset.type", "source", "bot", "event_type"}

func dims(extra ...string) []string { return append(append([]string{}, filterDims...), extra...) }

// blockLevels are blocks of 1, 4, 16 and 64 days: a 90-day period with its
// comparison reads a dozen or two blocks, and each day is stored four
// times rather than seven (1, 2, 4, ... 64), which halves the rollups'
// size and the blocks to build.
var blockLevels = []int{0, 2, 4, 6}

// maxLevel is the largest block level of c (0 for day blocks only).
func (c *cube) maxLevel() int {
	if len(c.levels) == 0 {
		return 0
	}
	return c.levels[len(c.levels)-1]
}

// below is the level under level k that a block of level k is built
// from and falls back to: the next smaller of c's levels.
func (c *cube) below(k int) int {
	out := 0
	for _, l := range c.levels {
		if l < k {
			out = l
		}
	}
	return out
}

// children are the blocks of the level below that make up block id.
func (c *cube) children(id blockID) []blockID {
	k := c.below(id.level)
	n := int64(1) << (id.level - k)
	out := make([]blockID, n)
	for j := range n {
		out[j] = blockID{cube: c.name, level: k, idx: id.idx<<(id.level-k) + j}
	}
	return out
}

var (
	// cubeCore answers the headline counts, the daily activity and the
	// customer list.
	cubeCore = &cube{name: "core.1", dims: dims(), levels: blockLevels}
	// cubeHours answers the hourly activity of one- and two-day periods.
	cubeHours = &cube{name: "hours.1", dims: dims(), hourly: true}
	// cubeSites answers channels and sites, and the count of sites on the
	// headline cards: referring sites are few, referring pages many.
	cubeSites = &cube{name: "sites.1", dims: dims("referring_domain"), levels: blockLevels}
	// cubeReferrers answers the pages. It has no top cube: the generated
	// data's campaign pages are many and alike, so a ranking from a top
	// cube could never be concluded (near-ties at the end of the list) and
	// cost two searches more than the full cube's (docs/BENCHMARKS.md).
	cubeReferrers = &cube{name: "referrers.2", dims: dims("referrer"), levels: blockLevels, uses: true}
	// cubePlaces answers countries and cities.
	cubePlaces = &cube{name: "places.2", dims: dims("geo.country_iso", "geo.country", "geo.city"), levels: blockLevels, uses: true}
	// cubeTech answers devices, browsers, systems, delivery and audience.
	cubeTech = &cube{name: "tech.1", dims: dims("status", "ua.device", "ua.browser", "ua.os"), levels: blockLevels}
	// cubeAssets answers the top assets and their figures.
	cubeAssets = &cube{name: "assets.2", dims: dims("asset_id", "asset.title", "asset.collection"), assets: true, levels: blockLevels, uses: true}
	// cubeAssetsTop ranks the assets of all customers (an admin's view).
	cubeAssetsTop = &cube{name: "assets_top.2", dims: dims("asset_id"), levels: blockLevels, topOf: cubeAssets, key: "asset_id", keep: topKeep, uses: true}
	// cubeAssetSites answers the highlights: assets with the sites their
	// uses came from, and which sites and assets were seen before.
	cubeAssetSites = &cube{name: "asset_sites.2", dims: dims("asset_id", "asset.title", "asset.collection", "referring_domain"), assets: true, levels: blockLevels, uses: true}
	// cubeViewers holds distinct viewers per day for every combination of
	// the filters (see viewers.go).
	cubeViewers = &cube{name: "viewers.1", viewers: true}

	// cubes in the order the builder fills them: what the overview page
	// reads first.
	// A top cube comes after its full cube: its blocks are made from the
	// full cube's.
	cubes = []*cube{cubeCore, cubeViewers, cubeSites, cubeAssets, cubeAssetsTop, cubeReferrers, cubePlaces, cubeTech, cubeAssetSites, cubeHours}
)

// topKeep is how many keys a top cube's block keeps per combination of
// the filter dimensions.
var topKeep = 200

func init() {
	for _, c := range cubes {
		if c.topOf != nil {
			c.topOf.top = c
		}
	}
}

func cubeNamed(name string) *cube {
	for _, c := range cubes {
		if c.name == name {
			return c
		}
	}
	return nil
}
