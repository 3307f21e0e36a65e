package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/bench"
	"github.com/leasehold/leasehold/internal/devstack"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure leasehold on the local stack and print the figures",
	}
	var shards, workers int
	var rest time.Duration
	leases := &cobra.Command{
		Use:   "leases",
		Short: "Crash failover, SIGTERM handoff, scale-out convergence and DynamoDB calls at rest, with real worker processes",
		Long: `Runs worker processes of this binary against the local stack (leasehold dev up)
and prints a Markdown table: failover after SIGKILL, handoff after SIGTERM,
scale-out convergence, duplicates, and DynamoDB writes and reads per
shard-hour at rest, counted at a proxy in front of DynamoDB. Lease timings
come from the lease.* settings. Refuses endpoints that are not on loopback:
it creates and deletes streams and tables.`,
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
			start := time.Now()
			res, err := bench.RunLeases(cmd.Context(), ls.kc, ls.db, bench.LeaseConfig{
				Binary: self, Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, Shards: shards, Workers: workers,
				Duration: c.Lease.Duration, TakeInterval: c.Lease.TakeInterval, Renew: c.Lease.RenewInterval,
				Rest: rest, Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leasehold bench leases — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
			bench.PrintLeases(cmd.OutOrStdout(), res)
			return nil
		},
	}
	leases.Flags().IntVar(&shards, "shards", 8, "shards in the benchmark stream")
	leases.Flags().IntVar(&workers, "workers", 3, "workers before the scale-out (one more is started)")
	leases.Flags().DurationVar(&rest, "rest", 60*time.Second, "window over which DynamoDB calls at rest are counted")
	cmd.AddCommand(leases, newBenchPipelineCmd(), newBenchExplorerCmd())
	return cmd
}

func newBenchPipelineCmd() *cobra.Command {
	var workers, shards, rate int
	var dur time.Duration
	var backend string
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "End-to-end latency (put → searchable), worker CPU per 1,000 records and peak RSS, with real workers and sinks",
		Long: `Produces generated CloudFront lines at a steady rate into a new stream on the
local stack, runs worker processes of this binary with the full pipeline
(OpenSearch or, with --backend elasticsearch, Elasticsearch; S3, DynamoDB),
and prints a Markdown table: the time from PutRecords acknowledged to
searchable (p50, p99, over every
10th record), worker CPU seconds per 1,000 records and peak RSS. Refuses
endpoints that are not on loopback.`,
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
			var search bench.SearchBackend
			switch backend {
			case "opensearch":
				search = bench.SearchBackend{Kind: backend, URL: ls.OpenSearch}
			case "elasticsearch":
				search = bench.SearchBackend{Kind: backend, URL: ls.Elasticsearch, Username: devstack.ElasticsearchUser,
					Password: devstack.ElasticsearchPassword, CAFile: ls.ElasticsearchCA}
			default:
				return usageError{fmt.Errorf("--backend %q: use opensearch or elasticsearch", backend)}
			}
			start := time.Now()
			res, err := bench.RunPipeline(cmd.Context(), ls.kc, ls.s3c, bench.PipelineConfig{
				Binary: self, Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, S3: ls.S3, OpenSearch: ls.OpenSearch, Search: search,
				Workers: workers, Shards: shards, Rate: rate, Duration: dur, Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leasehold bench pipeline — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
			bench.PrintPipeline(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 2, "worker processes")
	cmd.Flags().IntVar(&shards, "shards", 4, "shards in the benchmark stream")
	cmd.Flags().IntVar(&rate, "rate", 200, "records per second offered")
	cmd.Flags().DurationVar(&dur, "duration", 30*time.Second, "how long to produce")
	cmd.Flags().StringVar(&backend, "backend", "opensearch", "search sink and cluster: opensearch, or elasticsearch (the local stack's, started with 'dev up --with elasticsearch')")
	return cmd
}

func newBenchExplorerCmd() *cobra.Command {
	var cfg bench.ExplorerConfig
	cmd := &cobra.Command{
		Use:   "explorer",
		Short: "Page-view time and p50/p95 of each explorer API call, on the demo's data or on generated millions",
		Long: `Serves the explorer's API in-process and measures page views against the
local OpenSearch: each round clears OpenSearch's request cache, then issues
the overview page's six calls at once (as the page does), alternating an
admin (all customers) and one customer, over 7, 30 and 90 days; then the
same with the cache kept (--warm), as a dashboard that many open sees. With
--generate N it first bulk-indexes N documents shaped like the pipeline's
output into daily indices of --prefix (spread over --days). Prints a
Markdown table. Refuses an OpenSearch that is not on loopback.`,
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
			cfg.OpenSearch, cfg.Progress = ls.OpenSearch, cmd.ErrOrStderr()
			start := time.Now()
			res, err := bench.RunExplorer(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leasehold bench explorer — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
			bench.PrintExplorer(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Index, "index", "", "index pattern to measure (default: --prefix-*; the demo's is leasehold-demo-*)")
	cmd.Flags().StringVar(&cfg.Prefix, "prefix", "leasehold-bench-explorer", "index prefix for generated documents")
	cmd.Flags().IntVar(&cfg.Generate, "generate", 0, "documents to generate first (0: measure what is there)")
	cmd.Flags().IntVar(&cfg.Days, "days", 90, "days the generated documents spread over, ending yesterday")
	cmd.Flags().IntVar(&cfg.Rounds, "rounds", 20, "page views to measure with OpenSearch's request cache cleared before each")
	cmd.Flags().IntVar(&cfg.Warm, "warm", 0, "page views to measure after them with the cache kept (default: --rounds)")
	return cmd
}

func numCPU() int { return runtime.NumCPU() }
