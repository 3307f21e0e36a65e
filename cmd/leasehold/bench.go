//go:build !production

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/explorer"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/bench"
	"github.com/leasehold/leasehold/internal/dev/devstack"
	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/kinesisbench"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure leasehold on the local stack and print the figures",
	}
	var shards, workers int
	var rest, consuming, hold time.Duration
	var faults, scale, scaleLocal, processes, spreads bool
	var spreadRest time.Duration
	leases := &cobra.Command{
		Use:   "leases",
		Short: "Failover, handoff, scale-out, lease-table faults, DynamoDB cost and scale, with real worker processes",
		Long: `Runs worker processes of this binary against the local stack (leasehold dev up)
and prints Markdown tables: failover after SIGKILL, handoff after SIGTERM,
scale-out convergence and planned moves, duplicates, and DynamoDB read and
write units and dollars per shard-month while consuming and at rest,
counted at a proxy in front of DynamoDB for each worker.

--faults adds one worker's lease table misbehaving (latency, a black hole,
5xx and throttling): takeover time, records processed by the old owner
after the takeover, overlap. --scale adds lease coordinators in this
process: 1,000 shards and 20 workers on the local DynamoDB, and 10,000
shards and 200 workers on an in-memory store that counts capacity as
DynamoDB bills it: convergence, planned moves and cost at rest.
--spreads adds, for 1 to 64 shards per worker (64 shards), coordinators in
this process on that store: units and dollars at rest beside the Java
KCL's (a model of its default intervals, see docs/BENCHMARKS.md), and what
one joining worker costs. --processes=false --scale-local=false runs only
what needs no local stack.

Lease timings come from the lease.* settings. Refuses endpoints that are
not on loopback: it creates and deletes streams and tables.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			var ls localStack
			self := ""
			if processes || scale && scaleLocal {
				if c, ls, self, err = localRun(cmd); err != nil {
					return err
				}
			}
			start := time.Now()
			var res *bench.LeaseResult
			if processes {
				r, err := bench.RunLeases(cmd.Context(), ls.kc, ls.db, bench.LeaseConfig{
					Binary: self, Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, Shards: shards, Workers: workers,
					Duration: c.Lease.Duration, TakeInterval: c.Lease.TakeInterval, Renew: c.Lease.RenewInterval, Margin: c.Lease.SafetyMargin,
					Rest: rest, Consuming: consuming, Faults: faults, FaultHold: hold, Progress: cmd.ErrOrStderr(),
					Env: localChildEnv(),
				})
				if err != nil {
					return err
				}
				res = &r
			}
			lc := lease.Config{Duration: c.Lease.Duration, RenewInterval: c.Lease.RenewInterval, TakeInterval: c.Lease.TakeInterval, SafetyMargin: c.Lease.SafetyMargin}
			var scales []bench.ScaleResult
			if scale {
				var scs []bench.ScaleConfig
				if scaleLocal {
					table := fmt.Sprintf("bench-scale-%d", time.Now().UnixNano()%1e9)
					defer ls.db.DeleteTable(context.WithoutCancel(cmd.Context()), &dynamodb.DeleteTableInput{TableName: &table}) //nolint:errcheck // best effort
					store, err := lease.NewDynamoStore(ls.db, table)
					if err != nil {
						return err
					}
					scs = append(scs, bench.ScaleConfig{Backend: "local DynamoDB", Store: store, Shards: 1000, Workers: 20})
				}
				scs = append(scs, bench.ScaleConfig{Backend: "in-memory, DynamoDB billing", Store: leasetest.NewFake(), Shards: 10000, Workers: 200})
				for _, sc := range scs {
					sc.Lease, sc.Progress = lc, cmd.ErrOrStderr()
					r, err := bench.RunScale(cmd.Context(), sc)
					if err != nil {
						return err
					}
					scales = append(scales, r)
				}
			}
			var sprs []bench.SpreadResult
			if spreads {
				if sprs, err = bench.RunSpreads(cmd.Context(), bench.SpreadConfig{Rest: spreadRest, Lease: lc, Progress: cmd.ErrOrStderr()}); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "leasehold bench leases — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
			if res != nil {
				bench.PrintLeases(out, *res)
			}
			if len(scales) > 0 {
				fmt.Fprintf(out, "\n### Scale: lease coordinators in one process, no records\n\n")
				bench.PrintScale(out, scales)
			}
			if len(sprs) > 0 {
				fmt.Fprintf(out, "\n### Cost by spread, beside the Java KCL's\n\n")
				bench.PrintSpreads(out, sprs)
			}
			return nil
		},
	}
	leases.Flags().IntVar(&shards, "shards", 8, "shards in the benchmark stream")
	leases.Flags().IntVar(&workers, "workers", 3, "workers before the scale-out (one more is started)")
	leases.Flags().DurationVar(&rest, "rest", 60*time.Second, "window over which DynamoDB units at rest are counted")
	leases.Flags().DurationVar(&consuming, "consuming", 30*time.Second, "window over which DynamoDB units are counted while records flow")
	leases.Flags().BoolVar(&faults, "faults", true, "run the lease-table fault scenarios")
	leases.Flags().DurationVar(&hold, "fault-hold", 0, "how long each fault lasts (default 3 × lease.duration)")
	leases.Flags().BoolVar(&scale, "scale", true, "run the scale scenarios (1,000 shards / 20 workers, 10,000 / 200)")
	leases.Flags().BoolVar(&scaleLocal, "scale-local", true, "include the 1,000-shard scale scenario on the local DynamoDB")
	leases.Flags().BoolVar(&processes, "processes", true, "run the worker-process scenarios (failover, handoff, faults, cost) on the local stack")
	leases.Flags().BoolVar(&spreads, "spreads", true, "run the cost-by-spread scenarios (1 to 64 shards per worker) beside the Java KCL's")
	leases.Flags().DurationVar(&spreadRest, "spread-rest", 130*time.Second, "window over which units at rest are counted in the spread scenarios")
	cmd.AddCommand(leases, newBenchPipelineCmd(), newBenchExplorerCmd())
	return cmd
}

func newBenchPipelineCmd() *cobra.Command {
	var workers, shards, rate int
	var dur, warmup, backlog, rest time.Duration
	var backend, sink, consumer, profileDir, kinesisServer string
	var noLimits bool
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "End-to-end latency, GetRecords calls per shard-second, worker CPU per 1,000 records and peak RSS, with real workers",
		Long: `Produces generated CloudFront lines at a steady rate into a new stream on the
local stack, runs worker processes of this binary, and prints a Markdown
table. Refuses endpoints that are not on loopback.

--sink full (default) runs the whole pipeline (OpenSearch or, with
--backend elasticsearch, Elasticsearch; S3, DynamoDB) and measures the time
from PutRecords acknowledged to searchable (p50, p99, over every 10th
record), GetRecords calls per shard-second, worker CPU seconds per 1,000
records and peak RSS.

--sink file measures the read path alone: each worker appends every record
to a file (worker.file_sink), everything else at its defaults. Workers read
through a proxy that enforces AWS's GetRecords limits per shard (5 calls
and 2 MiB per second, shared by all consumers; --no-limits lifts them) and
counts every call by shard. It prints GetRecords calls per shard-second,
the most calls one shard got in any second, throttled calls, CPU seconds
per 1,000 records, the consumers' wake-ups per second (voluntary context
switches) and put → processed latency over a steady window (after
--warmup), their CPU and wake-ups at rest (--rest, before the production
starts), and with --backlog the catch-up: that many seconds' worth of
records are put before any worker starts. --consumer runs another consumer
instead of leasehold workers, for comparisons (see docs/BENCHMARKS.md for
what it is given and must write). --profile-dir saves a CPU profile of
each worker over the steady window.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ls, self, err := localRun(cmd)
			if err != nil {
				return err
			}
			start := time.Now()
			switch sink {
			case "file":
				if dur == 0 && backlog > 0 {
					dur = -1 // the catch-up alone
				}
				kc, kinesisURL := ls.kc, ls.Kinesis
				against := "the local Kinesis emulator"
				switch kinesisServer {
				case "emulator":
				case "kinesisbench":
					srv, err := kinesisbench.Start()
					if err != nil {
						return err
					}
					defer srv.Close()
					kinesisURL = srv.URL()
					kc = kinesis.New(ls.kc.Options(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kinesisURL) })
					against = "kinesisbench (in-memory Kinesis-compatible benchmark server, internal/dev/kinesisbench)"
				default:
					return usageError{fmt.Errorf("--kinesis %q: use emulator or kinesisbench", kinesisServer)}
				}
				rc := bench.ReadsConfig{Binary: self, Kinesis: kinesisURL, DynamoDB: ls.DynamoDB, Workers: workers, Shards: shards, Against: against,
					Rate: rate, Duration: dur, Warmup: warmup, Rest: rest, Backlog: backlog, Consumer: strings.Fields(consumer),
					ProfileDir: profileDir, Progress: cmd.ErrOrStderr(), Env: localChildEnv()}
				if noLimits {
					rc.Limits = &faultproxy.KinesisLimits{}
				}
				res, err := bench.RunReads(cmd.Context(), kc, rc)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "leasehold bench pipeline --sink file — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
				bench.PrintReads(cmd.OutOrStdout(), res)
				return nil
			case "full":
			default:
				return usageError{fmt.Errorf("--sink %q: use full or file", sink)}
			}
			if consumer != "" || backlog != 0 || kinesisServer != "emulator" {
				return usageError{errors.New("--consumer, --backlog and --kinesis need --sink file")}
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
			res, err := bench.RunPipeline(cmd.Context(), ls.kc, ls.s3c, bench.PipelineConfig{
				Binary: self, Kinesis: ls.Kinesis, DynamoDB: ls.DynamoDB, S3: ls.S3, OpenSearch: ls.OpenSearch, Search: search,
				Workers: workers, Shards: shards, Rate: rate, Duration: dur, Progress: cmd.ErrOrStderr(), Env: localChildEnv(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leasehold bench pipeline — %s, %d cores, took %s\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), time.Since(start).Round(time.Second))
			bench.PrintPipeline(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&sink, "sink", "full", "full (the search backend, S3, DynamoDB) or file (the read path alone)")
	cmd.Flags().IntVar(&workers, "workers", 2, "worker processes")
	cmd.Flags().IntVar(&shards, "shards", 4, "shards in the benchmark stream")
	cmd.Flags().IntVar(&rate, "rate", 200, "records per second offered")
	cmd.Flags().DurationVar(&dur, "duration", 30*time.Second, "how long to produce")
	cmd.Flags().StringVar(&backend, "backend", "opensearch", "search sink and cluster: opensearch, or elasticsearch (the local stack's, started with 'dev up --with elasticsearch')")
	cmd.Flags().DurationVar(&warmup, "warmup", 20*time.Second, "with --sink file: start of the production left out of the steady window")
	cmd.Flags().DurationVar(&rest, "rest", 15*time.Second, "with --sink file: measure the consumers' CPU and wake-ups this long with every shard read and nothing put, before the steady production (negative: skip)")
	cmd.Flags().DurationVar(&backlog, "backlog", 0, "with --sink file: put this many seconds' worth of records before the workers start, and measure the catch-up (--duration 0: the catch-up alone)")
	cmd.Flags().StringVar(&consumer, "consumer", "", "with --sink file: run this command (space-separated argv) instead of leasehold workers")
	cmd.Flags().StringVar(&profileDir, "profile-dir", "", "with --sink file: save a CPU profile of each worker over the steady window here")
	cmd.Flags().StringVar(&kinesisServer, "kinesis", "emulator", "with --sink file: emulator (the local stack's) or kinesisbench (an in-memory Kinesis-compatible server for benchmarks, started in this process: it answers at once, where the emulator takes seconds per large call)")
	cmd.Flags().BoolVar(&noLimits, "no-limits", false, "with --sink file: do not enforce AWS's GetRecords limits at the proxy")
	return cmd
}

func newBenchExplorerCmd() *cobra.Command {
	var cfg bench.ExplorerConfig
	var backend, searchLog string
	cmd := &cobra.Command{
		Use:   "explorer",
		Short: "Page-view time and p50/p95 of each explorer API call, on the demo's data or on generated millions",
		Long: `Serves the explorer's API in-process and measures page views against the
local OpenSearch (or, with --backend elasticsearch, the local Elasticsearch):
each round clears the cluster's request cache, then issues
the overview page's six calls at once (as the page does), alternating an
admin (all customers) and one customer, over 7, 30 and 90 days; then the
same with the cache kept (--warm), as a dashboard that many open sees. First
it builds (or brings up to date) the rollups of every finished day and
reports how long that took, unless --events-only. With
--generate N it first bulk-indexes N documents shaped like the pipeline's
output into daily indices of --prefix (spread over --days). Prints a
Markdown table. Refuses a cluster that is not on loopback.`,
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
			cfg.Progress = cmd.ErrOrStderr()
			switch backend {
			case "opensearch":
				cfg.Store, err = explorer.NewOpenSearch(cmd.Context(), explorer.OpenSearchOptions{URL: ls.OpenSearch, Timeout: 5 * time.Minute})
			case "elasticsearch":
				cfg.Store, err = explorer.NewElasticsearch(explorer.ElasticsearchOptions{Timeout: 5 * time.Minute, Conn: searchbulk.Conn{
					URL: ls.Elasticsearch, Username: devstack.ElasticsearchUser, Password: config.Secret(devstack.ElasticsearchPassword), CAFile: ls.ElasticsearchCA}})
			default:
				return usageError{fmt.Errorf("--backend %q: use opensearch or elasticsearch", backend)}
			}
			if err != nil {
				return err
			}
			if searchLog != "" {
				f, err := os.Create(searchLog)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.SearchLog = f
			}
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
	cmd.Flags().StringVar(&backend, "backend", "opensearch", "the cluster: opensearch, or elasticsearch (the local stack's, started with 'dev up --with elasticsearch')")
	cmd.Flags().StringVar(&cfg.Index, "index", "", "index pattern to measure (default: --prefix-*; the demo's is leasehold-demo-*)")
	cmd.Flags().StringVar(&cfg.Prefix, "prefix", "leasehold-bench-explorer", "index prefix for generated documents")
	cmd.Flags().IntVar(&cfg.Generate, "generate", 0, "documents to generate first (0: measure what is there)")
	cmd.Flags().IntVar(&cfg.Days, "days", 90, "days the generated documents spread over, ending yesterday")
	cmd.Flags().IntVar(&cfg.Rounds, "rounds", 20, "page views to measure with the cluster's request cache cleared before each")
	cmd.Flags().IntVar(&cfg.Warm, "warm", 0, "page views to measure after them with the cache kept (default: --rounds)")
	cmd.Flags().BoolVar(&cfg.EventsOnly, "events-only", false, "measure without rollups (otherwise the rollups of every finished day are built first, timed, and read)")
	cmd.Flags().StringVar(&cfg.RollupPrefix, "rollup-prefix", "leasehold-rollups", "prefix of the rollup indices")
	cmd.Flags().StringVar(&searchLog, "search-log", "", "write every search of the measured page views (indices, took, body) to this file as JSON lines")
	return cmd
}

func numCPU() int { return runtime.NumCPU() }
