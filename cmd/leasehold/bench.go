package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/bench"
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
			kEP := endpoint("AWS_ENDPOINT_URL_KINESIS", c.Dev.KinesisPort)
			dEP := endpoint("AWS_ENDPOINT_URL_DYNAMODB", c.Dev.DynamoDBPort)
			for _, ep := range []string{kEP, dEP} {
				if err := loopbackOnly(ep); err != nil {
					return usageError{err}
				}
			}
			setLocalCredentials()
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kEP) })
			db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dEP) })
			self, err := os.Executable()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := bench.RunLeases(cmd.Context(), kc, db, bench.LeaseConfig{
				Binary: self, Kinesis: kEP, DynamoDB: dEP, Shards: shards, Workers: workers,
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
	cmd.AddCommand(leases, newBenchPipelineCmd())
	return cmd
}

func newBenchPipelineCmd() *cobra.Command {
	var workers, shards, rate int
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "End-to-end latency (put → searchable), worker CPU per 1,000 records and peak RSS, with real workers and sinks",
		Long: `Produces generated CloudFront lines at a steady rate into a new stream on the
local stack, runs worker processes of this binary with the full pipeline
(OpenSearch, S3, DynamoDB), and prints a Markdown table: the time from
PutRecords acknowledged to searchable in OpenSearch (p50, p99, over every
10th record), worker CPU seconds per 1,000 records and peak RSS. Refuses
endpoints that are not on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			eps := map[string]string{
				"kinesis":    endpoint("AWS_ENDPOINT_URL_KINESIS", c.Dev.KinesisPort),
				"dynamodb":   endpoint("AWS_ENDPOINT_URL_DYNAMODB", c.Dev.DynamoDBPort),
				"s3":         endpoint("AWS_ENDPOINT_URL_S3", c.Dev.S3Port),
				"opensearch": fmt.Sprintf("http://127.0.0.1:%d", c.Dev.OpenSearchPort),
			}
			for _, ep := range eps {
				if err := loopbackOnly(ep); err != nil {
					return usageError{err}
				}
			}
			setLocalCredentials()
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(eps["kinesis"]) })
			s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
				o.BaseEndpoint = aws.String(eps["s3"])
				o.UsePathStyle = true
				o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
				o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			})
			self, err := os.Executable()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := bench.RunPipeline(cmd.Context(), kc, s3c, bench.PipelineConfig{
				Binary: self, Kinesis: eps["kinesis"], DynamoDB: eps["dynamodb"], S3: eps["s3"], OpenSearch: eps["opensearch"],
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
	return cmd
}

// setLocalCredentials fills the region and static test credentials the
// local stack accepts, unless the environment already has them.
func setLocalCredentials() {
	os.Setenv("AWS_REGION", envOr("AWS_REGION", "us-east-1"))
	os.Setenv("AWS_ACCESS_KEY_ID", envOr("AWS_ACCESS_KEY_ID", "test"))
	os.Setenv("AWS_SECRET_ACCESS_KEY", envOr("AWS_SECRET_ACCESS_KEY", "test"))
}

func endpoint(env string, port int) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		return v
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

func loopbackOnly(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("endpoint %s is not on loopback: the benchmark creates and deletes streams and tables, so it only runs against the local stack", ep)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func numCPU() int { return runtime.NumCPU() }
