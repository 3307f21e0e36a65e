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
	name     string   // with a version: part of every rollup key, so a changed cube is rebuilt, never mixed
	dims     []string // dimension fields besides tenant
	assets   bool     // by asset: dims hold asset_id; no all-customers level
	hourly   bool     // event_time is the hour (level 0 only); else the block's first day
	maxLevel int      // blocks of up to 2^maxLevel days
	viewers  bool     // the distinct-viewers cube (built and read in its own way)
}

// filterDims are the dimensions of every cube: the scope's filters other
// than the customer and the asset apply to rollup documents as to events.
var filterDims = []string{"asset.type", "source", "bot", "event_type"}

func dims(extra ...string) []string { return append(append([]string{}, filterDims...), extra...) }

// maxBlockLevel makes the largest block 64 days: a 90-day period with its
// comparison reads about a dozen blocks.
const maxBlockLevel = 6

var (
	// cubeCore answers the headline counts, the daily activity and the
	// customer list.
	cubeCore = &cube{name: "core.1", dims: dims(), maxLevel: maxBlockLevel}
	// cubeHours answers the hourly activity of one- and two-day periods.
	cubeHours = &cube{name: "hours.1", dims: dims(), hourly: true}
	// cubeReferrers answers channels, sites and pages, and the count of
	// sites on the headline cards.
	cubeReferrers = &cube{name: "referrers.1", dims: dims("referring_domain", "referrer"), maxLevel: maxBlockLevel}
	// cubePlaces answers countries and cities.
	cubePlaces = &cube{name: "places.1", dims: dims("geo.country_iso", "geo.country", "geo.city"), maxLevel: maxBlockLevel}
	// cubeTech answers devices, browsers, systems, delivery and audience.
	cubeTech = &cube{name: "tech.1", dims: dims("status", "ua.device", "ua.browser", "ua.os"), maxLevel: maxBlockLevel}
	// cubeAssets answers the top assets and their figures.
	cubeAssets = &cube{name: "assets.1", dims: dims("asset_id", "asset.title", "asset.collection"), assets: true, maxLevel: maxBlockLevel}
	// cubeAssetSites answers the highlights: assets with the sites their
	// uses came from, and which sites and assets were seen before.
	cubeAssetSites = &cube{name: "asset_sites.1", dims: dims("asset_id", "asset.title", "asset.collection", "referring_domain"), assets: true, maxLevel: maxBlockLevel}
	// cubeViewers holds distinct viewers per day for every combination of
	// the filters (see viewers.go).
	cubeViewers = &cube{name: "viewers.1", viewers: true}

	// cubes in the order the builder fills them: what the overview page
	// reads first.
	cubes = []*cube{cubeCore, cubeViewers, cubeReferrers, cubeAssets, cubePlaces, cubeTech, cubeAssetSites, cubeHours}
)

func cubeNamed(name string) *cube {
	for _, c := range cubes {
		if c.name == name {
			return c
		}
	}
	return nil
}
