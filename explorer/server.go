// Package explorer is the asset usage explorer: a web page, served by the
// leasehold binary, where a marketing team sees which of its assets are
// used, how much, where, on what, and how that changed against an earlier
// period. The Go server answers the page's questions with aggregations it
// builds from typed parameters and sends to OpenSearch or Elasticsearch
// (a Backend); the browser never talks to the cluster.
//
// Every API call is authenticated (a per-user token, exchanged for a
// signed session cookie, or sent as a bearer token) and every query the
// server sends carries the caller's tenant filter, whatever the request
// asks: a customer never sees another customer's data. Only admins may
// choose a tenant, or see all of them.
//
// The page is static HTML, CSS and JavaScript embedded in the binary
// (web/), with no build step and no third-party code; charts and the map
// are SVG drawn by the page's own script, and every text comes from one
// message catalog (web/messages.json).
package explorer

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

//go:generate sh -c "cd mapdata && npm ci --no-audit --no-fund && go run ./mkmap"

//go:embed web
var webFS embed.FS

// Config configures a Server.
type Config struct {
	// Backend is the data store: NewOpenSearch or NewElasticsearch.
	// Default: OpenSearch at OpenSearch, with basic auth when Username is
	// set (NewOpenSearch offers TLS and SigV4).
	Backend Backend
	// OpenSearch is the cluster's base URL (http://127.0.0.1:9200), when
	// Backend is not set.
	OpenSearch string
	// Username and Password, when set, are sent with basic auth.
	Username, Password string
	// Index is the index pattern the OpenSearch sink writes
	// (leasehold-events-*).
	Index string
	// Rollups is what the explorer does with rollups (see rollup.go):
	// RollupsOff ("", the default: read events only), RollupsRead (read
	// rollups that another explorer builds) or RollupsBuild (read them and, while Serve runs, keep them
	// current in the background).
	Rollups string
	// RollupPrefix names the rollup indices, <prefix>-d-YYYY.MM, and their
	// records, <prefix>-state (default "leasehold-rollups"). Index must
	// not match them.
	RollupPrefix string
	// RollupSettle is how long a finished day's events must stay
	// unchanged before it is rolled up (zero: at once); until then it is
	// read from its events.
	RollupSettle time.Duration
	// RollupInterval is how often the builder looks for days to roll up
	// (default 1m).
	RollupInterval time.Duration
	// RollupCheck is how long a reading of the indices' fingerprints is
	// reused (zero: every search reads them again). A change to a rolled-up
	// day shows in the figures after at most this long.
	RollupCheck time.Duration
	// AppDomains are the platform's own sites (its web app): traffic
	// referred by them is the channel "app", not "websites".
	AppDomains []string
	// HighlightMinChange is the smallest change, in percent, that a
	// highlight reports (default 50); HighlightMinCount is the fewest
	// events, in the larger of the two periods, behind one (default 20).
	HighlightMinChange float64
	HighlightMinCount  int64
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// Lag, when set, reports the workers' lag behind the stream and when
	// it was measured, for the data-freshness line.
	Lag func(ctx context.Context) (time.Duration, time.Time, error)
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
	// HTTPClient talks to OpenSearch (default: a client with a 30s timeout).
	HTTPClient *http.Client
}

// The values of Config.Rollups.
const (
	RollupsOff   = "off"
	RollupsRead  = "read"
	RollupsBuild = "build"
)

func (c *Config) defaults() error {
	if c.Backend == nil && c.OpenSearch == "" {
		return errors.New("explore.opensearch_url: must not be empty")
	}
	if c.Index == "" {
		return errors.New("explore.index: must not be empty")
	}
	switch c.Rollups {
	case "":
		c.Rollups = RollupsOff
	case RollupsOff, RollupsRead, RollupsBuild:
	default:
		return fmt.Errorf("explore.rollups: %q is not off, read or build", c.Rollups)
	}
	if c.RollupPrefix == "" {
		c.RollupPrefix = "leasehold-rollups"
	}
	if err := checkRollupPrefix(c.Index, c.RollupPrefix); err != nil {
		return err
	}
	if c.RollupInterval == 0 {
		c.RollupInterval = time.Minute
	}
	if c.HighlightMinChange == 0 {
		c.HighlightMinChange = 50
	}
	if c.HighlightMinCount == 0 {
		c.HighlightMinCount = 20
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Backend == nil {
		c.Backend = &openSearch{base: strings.TrimRight(c.OpenSearch, "/"), user: c.Username, password: c.Password, http: c.HTTPClient}
	}
	return nil
}

// checkRollupPrefix refuses an index pattern that matches the rollup
// indices: their documents would be counted as events, and every rollup
// written would look like a change to the events.
func checkRollupPrefix(index, prefix string) error {
	if prefix != strings.ToLower(prefix) || strings.ContainsAny(prefix, " ,/\\?#\"<>|*:") || strings.HasPrefix(prefix, "-") || strings.HasPrefix(prefix, "_") {
		return fmt.Errorf("explore.rollup_prefix: %q is not an index name prefix (lowercase, no spaces or ,/\\?#\"<>|*:)", prefix)
	}
	for _, name := range []string{prefix + "-d-2026.01", prefix + "-state"} {
		if ok, _ := path.Match(index, name); ok {
			return fmt.Errorf("explore.rollup_prefix: explore.index %q matches the rollup index %s; choose a prefix it does not match", index, name)
		}
	}
	return nil
}

// Server is the explorer's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg      Config
	users    *Users
	store    *store
	rollups  *rollups // nil with RollupsOff
	builder  *builder // set with RollupsBuild
	sessions *sessions
	log      *zap.Logger
	mux      *http.ServeMux

	freshCache sync.Map // tenant ("" for all) → cachedFreshness

	// Rankings answered from a top cube, and those that had to be asked
	// from the full cube after all (see top.go).
	topRanked, topFellBack atomic.Int64
	// Top assets whose figures came from the ranking search, and those
	// counted by a second search (see topAssetsAtOnce); figuresAtOnce
	// off always counts them apart, as before (for tests).
	atOnce, atOnceFellBack atomic.Int64
	figuresAtOnce          bool

	titles titleCache // the shown assets' catalog fields (titles.go)

	// beforeFellBack counts the highlights' searches of earlier uses
	// asked again restricted to the candidates (see seenBefore).
	beforeFellBack atomic.Int64
	// listRecounts counts listed current figures counted again because
	// their bucket may have missed a shard (see complete).
	listRecounts atomic.Int64
}

// New returns the explorer's handler. users is the access list; log may
// be nil.
func New(cfg Config, users *Users, log *zap.Logger) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if users == nil {
		return nil, errors.New("explorer: no users")
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg: cfg, users: users, log: log,
		store:    &store{b: cfg.Backend, raw: cfg.Index, log: log},
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		mux:      http.NewServeMux(),

		figuresAtOnce: true,
	}
	if cfg.Rollups != RollupsOff {
		s.rollups = newRollups(s.store, cfg.RollupPrefix, cfg.RollupCheck, log)
	}
	if cfg.Rollups == RollupsBuild {
		s.builder = newBuilder(s.rollups, cfg.RollupSettle, cfg.RollupInterval, cfg.Now, log)
	}
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	s.mux.Handle("GET /", files)
	s.mux.HandleFunc("POST /api/login", s.handleLogin)
	s.mux.HandleFunc("POST /api/logout", s.handleLogout)
	s.mux.HandleFunc("GET /api/login", s.handleLogin) // answers 405
	s.mux.HandleFunc("GET /api/logout", s.handleLogout)
	for path, h := range map[string]func(http.ResponseWriter, *http.Request, Principal, Query){
		"/api/me":         s.handleMe,
		"/api/summary":    s.handleSummary,
		"/api/assets":     s.handleAssets,
		"/api/sources":    s.handleSources,
		"/api/places":     s.handlePlaces,
		"/api/tech":       s.handleTech,
		"/api/asset":      s.handleAsset,
		"/api/highlights": s.handleHighlights,
		"/api/tenants":    s.handleTenants,
	} {
		s.mux.HandleFunc("GET "+path, s.requireAuth(s.withQuery(h)))
	}
	s.mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such API call")
	})
	return s, nil
}

// ServeHTTP sets the security headers on every answer and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		h.Set("Cache-Control", "no-store")
		// A page on another site may not read or even trigger the API
		// with the visitor's cookie (SameSite=Strict already withholds
		// it; this refuses the request outright).
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross_site", "cross-site request refused")
			return
		}
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	s.mux.ServeHTTP(w, r)
}

// withQuery parses the typed parameters and enforces the tenant rule: a
// customer user may not name another tenant (403), and its own tenant is
// forced into the query whatever it sent.
func (s *Server) withQuery(h func(http.ResponseWriter, *http.Request, Principal, Query)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		q, err := ParseQuery(r.URL.Query(), s.cfg.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_parameter", err.Error())
			return
		}
		if !p.Admin {
			if q.Tenant != "" && q.Tenant != p.Tenant {
				s.log.Warn("tenant refused", zapUser(p.Name), zap.String("asked", q.Tenant))
				writeError(w, http.StatusForbidden, "forbidden_tenant", "you may only see your own organisation's data")
				return
			}
			q.Tenant = p.Tenant
		}
		h(w, r, p, q)
	}
}

// Listen binds addr (127.0.0.1:0 picks a free port).
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Serve runs the server on l until ctx ends, then shuts down within 5s.
// With rollups it also keeps their snapshot fresh (so that requests
// rarely wait for one) and, with RollupsBuild, builds them in the
// background.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	if s.builder != nil {
		wg.Go(func() { s.builder.run(bg) })
	}
	if s.rollups != nil {
		// The first page view need not wait for the first reading of the
		// indices' state: it is under way (or done) when it comes.
		wg.Go(func() { s.rollups.reload(bg, 0) })
	}
	if s.rollups != nil && s.cfg.RollupCheck > 0 {
		wg.Go(func() { s.rollups.keepFresh(bg, s.cfg.RollupCheck/2) })
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		<-errc
		return nil
	}
}

// apiError is the body of every error answer: a stable code the page
// maps to a message of its catalog, and an English explanation.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// fail answers a failed search: 504 when the request ran out of time, 502
// when OpenSearch failed, 500 otherwise. The detail goes to the log only.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("api call failed", zap.String("path", r.URL.Path), zap.Error(err))
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "timeout", "the data store took too long to answer")
	case errors.Is(err, ErrSearch):
		writeError(w, http.StatusBadGateway, "search_unavailable", "the data store is not answering; try again in a minute")
	default:
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("internal error at %s", r.URL.Path))
	}
}

// BuildRollups makes one pass of the rollup builder: it builds every
// block of finished days that can be built now (Config.RollupSettle
// applies) and returns what it did. It blocks until done; it is not safe
// to call concurrently with itself or with Serve's builder. It fails
// unless Config.Rollups is RollupsBuild.
func (s *Server) BuildRollups(ctx context.Context) (BuildStats, error) {
	if s.builder == nil {
		return BuildStats{}, errors.New("explorer: rollups are not built by this explorer (explore.rollups)")
	}
	return s.builder.pass(ctx)
}

func zapUser(name string) zap.Field       { return zap.String("user", name) }
func zapErr(err error) zap.Field          { return zap.Error(err) }
func zapRemote(r *http.Request) zap.Field { return zap.String("remote", r.RemoteAddr) }
