package explorer_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/explorer"
)

// TestBrowser drives the page in Debian's headless chromium through
// playwright-core (explorer/browsertest/run.mjs): sign-in, period and
// comparison, an asset's page, a CSV export, switching tenant as admin,
// the second language, a phone-sized screen, and a customer's limits.
//
// It needs /usr/bin/chromium and `npm ci` in explorer/browsertest, which
// scripts/test.sh installs; without them it is skipped, unless
// LEASEHOLD_TEST_REQUIRE_BROWSER=1 (set by scripts/test.sh) makes that a
// failure. Screenshots go to LEASEHOLD_TEST_SCREENSHOTS (default a temporary
// folder; `make screenshots` writes them to docs/).
func TestBrowser(t *testing.T) {
	c := openSearch() // the page, not the store, is under test here
	c.seed(t)
	chromium := os.Getenv("LEASEHOLD_TEST_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	missing := ""
	if _, err := os.Stat(chromium); err != nil {
		missing = chromium
	} else if _, err := os.Stat("browsertest/node_modules/playwright-core"); err != nil {
		missing = "explorer/browsertest/node_modules (npm ci)"
	} else if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	}
	if missing != "" {
		if os.Getenv("LEASEHOLD_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatalf("browser test needs %s; scripts/test.sh installs it", missing)
		}
		t.Skipf("browser test needs %s (scripts/test.sh installs it)", missing)
	}
	users, err := explorer.NewUsers([]explorer.User{
		{Name: "admin", TokenSHA256: explorer.HashToken(tokens["admin"]), Admin: true},
		{Name: "a", TokenSHA256: explorer.HashToken(tokens["a"]), Tenant: tenantA},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := explorer.New(explorer.Config{Backend: c.b, Index: c.events + "-*",
		AppDomains: []string{"app.example.com"}, Now: func() time.Time { return now },
		Rollups: explorer.RollupsRead, RollupPrefix: c.rollups}, users, nil) // as `leasehold explore` serves it
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })

	shots := os.Getenv("LEASEHOLD_TEST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "run.mjs")
	cmd.Dir = "browsertest"
	cmd.Env = append(os.Environ(),
		"LEASEHOLD_BT_URL=http://"+l.Addr().String(), "LEASEHOLD_BT_ADMIN_TOKEN="+tokens["admin"], "LEASEHOLD_BT_CUSTOMER_TOKEN="+tokens["a"],
		"LEASEHOLD_BT_OTHER_TENANT="+tenantB, "LEASEHOLD_BT_SCREENSHOTS="+shots, "LEASEHOLD_BT_CHROMIUM="+chromium,
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1", "PLAYWRIGHT_BROWSERS_PATH=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("run.mjs:\n%s", out.String())
	if err != nil || !strings.Contains(out.String(), "\nok\n") {
		t.Fatalf("browser test failed: %v", err)
	}
}
