package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var keep bool
	var geoDir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system on the local stack with a generated media-library workload and print what marketing asks",
		Long: `Generates two weeks of CloudFront logs and app events for a media library,
uploads the logs to S3, runs 'backfill' and 'produce', runs 3 workers with the
full pipeline (OpenSearch, S3, DynamoDB), waits until everything is indexed,
checks the figures against what was generated, and prints a summary with top
assets this week vs last week, referring sites and countries.

Needs the local stack (leasehold dev up; 'make demo' does both). A second run
reuses what the first created and is fast and idempotent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ls, err := openLocalStack(cmd.Context(), c)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cfg := demo.Config{
				Binary: self, Dir: filepath.Join(c.Dev.Dir, "demo"),
				Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, S3: ls.S3, OpenSearch: ls.OpenSearch,
				Out: cmd.OutOrStdout(), KeepWorkers: keep, Timeout: timeout,
			}
			if geoDir == "" {
				geoDir = findGeoTestdata()
			}
			if geoDir != "" {
				cfg.GeoIPCity, cfg.GeoIPASN = filepath.Join(geoDir, "GeoIP2-City-Test.mmdb"), filepath.Join(geoDir, "GeoLite2-ASN-Test.mmdb")
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: no GeoIP databases found (--geoip-dir); countries will be empty")
			}
			return demo.Run(cmd.Context(), ls.kc, ls.s3c, ls.db, cfg)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-workers", false, "leave the workers running after the summary until Ctrl-C (to watch leases and metrics)")
	cmd.Flags().StringVar(&geoDir, "geoip-dir", "", "folder with GeoIP2-City-Test.mmdb and GeoLite2-ASN-Test.mmdb (default: shared/testdata/geoip beside the repository)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for everything to be indexed")
	return cmd
}

// findGeoTestdata looks for the MaxMind test databases in
// shared/testdata/geoip in this or a parent folder.
func findGeoTestdata() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "testdata", "geoip")
		if _, err := os.Stat(filepath.Join(p, "GeoIP2-City-Test.mmdb")); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
