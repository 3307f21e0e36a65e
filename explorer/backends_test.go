package explorer_test

// One suite, two backends: the explorer's integration tests run against
// the local stack's OpenSearch 2 and Elasticsearch 8 alike, each holding
// the same fixture and its rollups, through the Backend the explorer
// would use in production (NewOpenSearch, NewElasticsearch). A backend
// whose service is not running fails its subtests with testenv.Require's
// message naming the command that starts it: a run that silently skipped
// Elasticsearch would look like a pass.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/explorer/explorertest"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/internal/dev/workload"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// The fixture: two weeks of demo-like traffic ending the day before "now".
var (
	now   = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	start = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	half  = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

	fixtureOnce sync.Once
	fixtureErr  error
	fixture     []event.Event
	owner       map[string]string // asset id → tenant
	tokens      = map[string]string{"admin": "admin-token-123456", "a": "tenant-a-token-123456", "b": "tenant-b-token-123456"}
	tenantA     string
	tenantB     string
)

// fixtureTopKeep is what the top cubes keep of the fixture.
const fixtureTopKeep = 12

// cluster is one search backend of the local stack, holding the fixture
// (indices <events>-YYYY.MM.DD) and its rollups (prefix <rollups>) once
// seeded.
type cluster struct {
	name    string // opensearch or elasticsearch: the testenv service
	b       explorer.Backend
	events  string
	rollups string
	once    sync.Once
	err     error
}

var clusters = []*cluster{{name: "opensearch"}, {name: "elasticsearch"}}

// openSearch is the cluster of the tests that are about the page rather
// than the store (the browser test).
func openSearch() *cluster { return clusters[0] }

// onBackends runs f on each backend, as a subtest named after it, with
// the fixture seeded there.
func onBackends(t *testing.T, f func(t *testing.T, c *cluster)) {
	t.Helper()
	for _, c := range clusters {
		t.Run(c.name, func(t *testing.T) {
			c.seed(t)
			f(t, c)
		})
	}
}

func TestMain(m *testing.M) {
	// The fixture is small: top cubes keeping 200 keys would leave none
	// out, and would not be read (they must be three times smaller than
	// their full cube). Keeping a few, and reading them whenever they are
	// smaller, makes every admin ranking of assets go through the bound
	// of top.go, concluding or asking the full cube.
	explorer.SetTopKeep(fixtureTopKeep, 1)
	code := m.Run()
	for _, c := range clusters {
		if c.events == "" {
			continue
		}
		for _, p := range []string{c.events, c.rollups} {
			if err := explorertest.Delete(context.Background(), c.b, p); err != nil {
				fmt.Fprintf(os.Stderr, "clean up %s: %v\n", c.name, err)
				code = max(code, 1)
			}
		}
	}
	os.Exit(code)
}

// backend requires c's service and returns its Backend, connected as a
// user of `leasehold explore` would connect it.
func (c *cluster) backend(t *testing.T) explorer.Backend {
	t.Helper()
	e := testenv.Require(t, c.name)
	if c.b != nil {
		return c.b
	}
	var err error
	switch c.name {
	case "opensearch":
		c.b, err = explorer.NewOpenSearch(context.Background(), explorer.OpenSearchOptions{URL: e.OpenSearch})
	case "elasticsearch":
		c.b, err = explorer.NewElasticsearch(explorer.ElasticsearchOptions{Conn: searchbulk.Conn{
			URL: e.Elasticsearch, Username: e.ES.Username, Password: config.Secret(e.ES.Password), CAFile: e.ES.CAFile}})
	}
	if err != nil {
		t.Fatalf("%s backend: %v", c.name, err)
	}
	return c.b
}

// seed indexes the fixture into c once, and builds its rollups.
func (c *cluster) seed(t *testing.T) {
	t.Helper()
	b := c.backend(t)
	generate(t)
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		c.events = fmt.Sprintf("explorer-test-%d", time.Now().UnixNano()%1e9)
		c.rollups = fmt.Sprintf("explorer-test-rollups-%d", time.Now().UnixNano()%1e9)
		if c.err = explorertest.Index(ctx, b, c.events, fixture); c.err != nil {
			return
		}
		c.err = buildRollups(ctx, b, c.events+"-*", c.rollups)
	})
	if c.err != nil {
		t.Fatalf("seed %s: %v", c.name, c.err)
	}
}

// generate makes the fixture's events once: the same events go into
// every backend.
func generate(t *testing.T) {
	t.Helper()
	cityDB := testenv.GeoIPCityDB(t)
	fixtureOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		wl := workload.New(workload.Config{Seed: 7, Start: start, Hours: 14 * 24, PeakHour: 80, AppEvents: 3000, Assets: 600, Tenants: 6})
		owner = map[string]string{}
		for _, a := range wl.Assets {
			owner[a.ID] = a.Tenant
		}
		dir, err := os.MkdirTemp("", "explorertest")
		if err != nil {
			fixtureErr = err
			return
		}
		defer os.RemoveAll(dir)
		if fixture, fixtureErr = explorertest.Generate(ctx, wl, dir, cityDB); fixtureErr != nil {
			return
		}
		// The two busiest customers.
		n := map[string]int{}
		for _, ev := range fixture {
			n[ev.Tenant]++
		}
		delete(n, "")
		ts := keysByCount(n)
		tenantA, tenantB = ts[0], ts[1]
	})
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
}

func keysByCount(n map[string]int) []string {
	var ks []string
	for k := range n {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return n[ks[i]] > n[ks[j]] || n[ks[i]] == n[ks[j]] && ks[i] < ks[j] })
	return ks
}

// buildRollups rolls up every finished day of index (before now) into
// rollup indices of prefix.
func buildRollups(ctx context.Context, b explorer.Backend, index, prefix string) error {
	users, _ := explorer.NewUsers(nil)
	srv, err := explorer.New(explorer.Config{Backend: b, Index: index, Rollups: explorer.RollupsBuild, RollupPrefix: prefix,
		Now: func() time.Time { return now }}, users, nil)
	if err != nil {
		return err
	}
	st, err := srv.BuildRollups(ctx)
	if err == nil && (st.Blocks == 0 || st.Docs == 0 || st.Waiting != 0) {
		err = fmt.Errorf("rollups: %+v", st)
	}
	return err
}

// newServer serves the fixture as the explorer does in production: from
// its rollups for the finished days and from events for the rest. Every
// test of figures against the workload runs on it; TestRollupsMatchEvents
// compares it with newEventsServer, which reads events only.
func (c *cluster) newServer(t *testing.T) *httptest.Server {
	t.Helper()
	return c.newServerWith(t, explorer.RollupsRead)
}

func (c *cluster) newEventsServer(t *testing.T) *httptest.Server {
	t.Helper()
	return c.newServerWith(t, explorer.RollupsOff)
}

// newServerOf serves the explorer over c with the fixture's users, reading
// rollups as given, and returns the Server too.
func (c *cluster) newServerOf(t *testing.T, rollups string) (*explorer.Server, *httptest.Server) {
	t.Helper()
	users, err := explorer.NewUsers([]explorer.User{
		{Name: "admin", TokenSHA256: explorer.HashToken(tokens["admin"]), Admin: true},
		{Name: "a", TokenSHA256: explorer.HashToken(tokens["a"]), Tenant: tenantA},
		{Name: "b", TokenSHA256: explorer.HashToken(tokens["b"]), Tenant: tenantB},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := explorer.New(explorer.Config{Backend: c.b, Index: c.events + "-*",
		AppDomains: []string{"app.example.com"}, Now: func() time.Time { return now },
		Rollups: rollups, RollupPrefix: c.rollups}, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

func (c *cluster) newServerWith(t *testing.T, rollups string) *httptest.Server {
	t.Helper()
	_, ts := c.newServerOf(t, rollups)
	return ts
}

// get calls the API as user and decodes the JSON answer into v.
func get(t *testing.T, ts *httptest.Server, user, path string, v any) int {
	t.Helper()
	code, b := raw(t, ts, user, path)
	if code == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return code
}
