package workload

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// This file gives the library what a marketing team recognises: titles and
// collections in an asset catalog (the asset_lookup processor's input), and
// a few stories in the traffic — assets that take off in the second half of
// the period from one site, one that fades, one embedded on a new site near
// the end — so the explorer's comparisons and highlights have something to
// say. Both draw from their own random sources, so the library's ids and the
// order of the main generator's draws stay as they were.

// catalogGap: every catalogGap-th asset is missing from the catalog, as
// newly uploaded assets are before the catalog's next export.
const catalogGap = 97

// describe fills Title and Collection of every asset.
func (w *Workload) describe() {
	rng := rand.New(rand.NewPCG(w.cfg.Seed^0x5ca1ab1e, 0xc0ffee))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for i := range w.Assets {
		a := &w.Assets[i]
		campaign := pick(campaigns)
		switch a.Kind {
		case "video":
			a.Title = fmt.Sprintf("%s – %s", campaign, pick(videoNames))
			a.Collection = "Campaigns/" + campaign
		case "image":
			switch rng.IntN(3) {
			case 0:
				a.Title = fmt.Sprintf("Team portrait – %s office", pick(offices))
				a.Collection = "Brand/People"
			default:
				a.Title = fmt.Sprintf("%s – %s", campaign, pick(imageNames))
				a.Collection = "Campaigns/" + campaign
			}
		case "audio":
			a.Title = fmt.Sprintf("%s – Episode %d: %s", pick(podcasts), 1+rng.IntN(80), pick(topics))
			a.Collection = "Podcasts"
		default:
			a.Title = fmt.Sprintf("%s – %s", campaign, pick(documentNames))
			a.Collection = "Press/" + campaign
		}
	}
}

// CatalogEntry is one line of the catalog WriteCatalog writes, in the
// asset_lookup processor's format.
type CatalogEntry struct {
	AssetID    string `json:"asset_id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Customer   string `json:"customer"`
	Collection string `json:"collection"`
}

// Catalog returns the catalog entries: every asset but every catalogGap-th,
// which the catalog does not know yet.
func (w *Workload) Catalog() []CatalogEntry {
	var out []CatalogEntry
	for i, a := range w.Assets {
		if i%catalogGap == catalogGap-1 {
			continue
		}
		out = append(out, CatalogEntry{AssetID: a.ID, Title: a.Title, Type: a.Kind, Customer: a.Tenant, Collection: a.Collection})
	}
	return out
}

// WriteCatalog writes Catalog as NDJSON and returns the number of entries.
func (w *Workload) WriteCatalog(out io.Writer) (int, error) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	cat := w.Catalog()
	for i, e := range cat {
		if err := enc.Encode(e); err != nil {
			return i, err
		}
	}
	return len(cat), nil
}

// A story changes some requests in part of the period: a request that
// falls in it goes to Asset (by its index) with probability Share and
// comes from Referrer, or (Fade) a request for Asset goes elsewhere.
type story struct {
	asset    int     // index in Assets (zipf rank: low is popular)
	share    float64 // of all requests in the window, redirected to asset
	referrer string
	from     float64 // window as fractions of the period
	fade     bool    // requests for asset in the window go to another asset instead (with probability share)
}

var stories = []story{
	{asset: 9, share: 0.025, referrer: "https://www.linkedin.com/feed/", from: 0.5},
	{asset: 24, share: 0.012, referrer: "https://t.co/", from: 0.5},
	{asset: 41, share: 0.006, referrer: "https://www.theverge.com/2026/11/brand-films-of-the-year", from: 0.8},
	{asset: 3, share: 0.65, from: 0.5, fade: true},
}

// Stories describes the traffic's stories, for documentation and tests:
// the asset ids that rise, and the one that fades, from the middle of the
// period (the late embedding on a new site is neither).
func (w *Workload) Stories() (rising []string, fading []string) {
	for _, s := range stories {
		if s.asset >= len(w.Assets) || s.from != 0.5 {
			continue
		}
		if s.fade {
			fading = append(fading, w.Assets[s.asset].ID)
		} else {
			rising = append(rising, w.Assets[s.asset].ID)
		}
	}
	return rising, fading
}

// tell applies the stories to a request for a at time t: it returns the
// asset to log and, when a story chose it, the referrer to log.
func (w *Workload) tell(a Asset, t time.Time) (Asset, string) {
	span := float64(w.cfg.Hours) * float64(time.Hour)
	at := float64(t.Sub(w.cfg.Start)) / span
	for _, s := range stories {
		if s.asset >= len(w.Assets) || at < s.from {
			continue
		}
		r := w.story.Float64()
		switch {
		case s.fade && a.ID == w.Assets[s.asset].ID && r < s.share:
			return w.Assets[(s.asset+1+w.story.IntN(len(w.Assets)-1))%len(w.Assets)], ""
		case !s.fade && r < s.share:
			return w.Assets[s.asset], s.referrer
		}
	}
	return a, ""
}

var (
	campaigns = []string{"Spring Launch 2026", "Summer Sale", "Black Friday", "Holiday Gift Guide", "Back to School", "Brand Refresh",
		"Product Keynote", "Sustainability Report", "Customer Stories", "Winter Collection", "Trade Show Berlin", "Partner Summit"}
	videoNames    = []string{"Hero film", "Teaser 15s", "Product demo", "Behind the scenes", "Customer interview", "Launch keynote", "Social cut 9:16", "Explainer"}
	imageNames    = []string{"Key visual 16:9", "Product shot, white background", "Instagram square", "LinkedIn banner", "Billboard 6x3", "Lifestyle photo"}
	documentNames = []string{"Brochure (EN)", "Press release", "Fact sheet", "Price list", "Press kit", "Case study"}
	podcasts      = []string{"The Marketing Hour", "Brand Matters", "Inside the Studio"}
	topics        = []string{"Building a brand", "What customers want", "Video that sells", "Measuring reach", "Events after the pandemic"}
	offices       = []string{"Berlin", "London", "New York", "Stockholm", "Singapore", "São Paulo", "Sydney"}
)
