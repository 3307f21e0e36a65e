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
			os.Setenv("AWS_REGION", envOr("AWS_REGION", "us-east-1"))
			os.Setenv("AWS_ACCESS_KEY_ID", envOr("AWS_ACCESS_KEY_ID", "test"))
			os.Setenv("AWS_SECRET_ACCESS_KEY", envOr("AWS_SECRET_ACCESS_KEY", "test"))
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
	cmd.AddCommand(leases)
	return cmd
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
