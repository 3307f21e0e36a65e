package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leasehold/leasehold/explorer"
)

// ExplorerAccess is who may open the demo's explorer: an admin and two
// customers, with their tokens (kept in Dir/explorer-tokens.json, mode
// 0600, and reused by later runs) and the users file that admits them
// (hashes only).
type ExplorerAccess struct {
	UsersFile string
	Admin     string            // the admin's token
	Customers map[string]string // tenant → token
}

// DemoCustomers are the tenants the demo gives a customer token: the two
// biggest of the default workload.
var DemoCustomers = []string{"acme-000", "globex-001"}

// PrepareExplorer makes (or reuses) the tokens and writes the users file.
func PrepareExplorer(dir string) (ExplorerAccess, error) {
	acc := ExplorerAccess{UsersFile: filepath.Join(dir, "explorer-users.yaml"), Customers: map[string]string{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return acc, err
	}
	tokPath := filepath.Join(dir, "explorer-tokens.json")
	if b, err := os.ReadFile(tokPath); err == nil {
		_ = json.Unmarshal(b, &acc)
	}
	if acc.Admin == "" {
		acc.Admin = explorer.NewToken()
	}
	for _, t := range DemoCustomers {
		if acc.Customers[t] == "" {
			acc.Customers[t] = explorer.NewToken()
		}
	}
	b, _ := json.MarshalIndent(acc, "", "  ")
	if err := os.WriteFile(tokPath, b, 0o600); err != nil {
		return acc, err
	}
	var y strings.Builder
	y.WriteString("# Written by leasehold demo: who may sign in to the demo's explorer (token hashes only).\nusers:\n")
	fmt.Fprintf(&y, "  - {name: admin, token_sha256: %s, admin: true}\n", explorer.HashToken(acc.Admin))
	for _, t := range DemoCustomers {
		fmt.Fprintf(&y, "  - {name: %s-marketing, token_sha256: %s, tenant: %s}\n", t, explorer.HashToken(acc.Customers[t]), t)
	}
	return acc, os.WriteFile(acc.UsersFile, []byte(y.String()), 0o600)
}

// ExplorerArgs are the arguments of `leasehold explore` for the demo's data.
func ExplorerArgs(listen, openSearch, usersFile string) []string {
	return []string{"explore", "--explore.listen", listen, "--explore.opensearch-url", openSearch,
		"--explore.index", IndexPrefix + "-*", "--explore.users-file", usersFile, "--explore.app-domains", "app.example.com",
		"--explore.lease-table", LeaseTable, "--log.format", "json"}
}

// ExplorerEnv is the environment the demo's explorer runs with: the local
// stack's endpoints, for the lease table the freshness line reads.
func ExplorerEnv(cfg Config) []string { return procEnv(cfg) }

// ExplorerReady reports whether the explorer at base answers.
func ExplorerReady(base string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
}
