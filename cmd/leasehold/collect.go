package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/telemetry"
	"github.com/leasehold/leasehold/producer"
)

func newCollectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "collect",
		Short: "Run the HTTP collector: POST /v1/events validates app events and sends them to the stream",
		Long: `Run the HTTP collector. Clients POST one JSON event (application/json) or an
NDJSON batch (application/x-ndjson) to /v1/events on collect.listen; each event
is validated against the app-event schema and handed to the batching Kinesis
producer for stream.name. A request is all or nothing: 202 once every event is
in the producer's buffer (and, with collect.spool_dir, fsynced to the spool),
400 with every problem by line and field, 503 with Retry-After when the buffer
is full. Accepted events are retried without giving up while the process
lives; with a spool they also survive a crash and are sent on the next start.
See docs/COLLECTOR.md.

Metrics, /healthz and /readyz are served on collect.metrics_addr. On SIGTERM or
Ctrl-C /readyz turns 503, requests in progress finish and everything buffered
is sent, within collect.shutdown_grace.

Kinesis must be reachable at start-up, unless collect.spool_dir is set: then
the collector starts anyway, accepts events into the spool, sends them once
Kinesis answers, and /readyz reports Kinesis unreachable meanwhile. A stream
that does not exist or is refused always stops start-up.

Exit codes: 0 after a clean shutdown, 1 when accepted events could not be
sent or the server failed, 2 for a configuration mistake (and for Kinesis
unreachable at start-up without a spool).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			reg := telemetry.NewRegistry()
			telemetry.CountAWSCalls(&awsCfg, reg)
			kc := awsconf.Kinesis(awsCfg)
			unreachable, err := checkCollectStream(cmd.Context(), kc, c.Stream.Name, c.Collect.SpoolDir != "")
			if err != nil {
				return usageError{err}
			}
			col, err := collector.New(kc, c.Stream.Name, collectorConfig(c.Collect), log,
				producer.WithAggregation(c.Collect.Aggregate), producer.WithLogger(log))
			if err != nil {
				return usageError{err}
			}
			if unreachable != nil {
				if err := col.StartWithoutKinesis(unreachable); err != nil {
					return usageError{err}
				}
				log.Error("kinesis unreachable at start-up; accepting events into the spool and sending them when it answers (/readyz says so meanwhile)",
					zap.String("stream", c.Stream.Name), zap.String("spool_dir", c.Collect.SpoolDir), zap.Error(unreachable))
			}
			reg.MustRegister(col.Metrics())
			ln, err := net.Listen("tcp", c.Collect.Listen)
			if err != nil {
				return usageError{fmt.Errorf("collect.listen: %w", err)}
			}
			stopMetrics, err := serveTelemetry(c.Collect.MetricsAddr, "collect.metrics_addr", reg, col.Ready, log)
			if err != nil {
				ln.Close()
				return usageError{err}
			}
			defer stopMetrics()
			log.Info("collector listening", zap.String("addr", ln.Addr().String()), zap.String("stream", c.Stream.Name),
				zap.Bool("token_required", c.Collect.Token != ""), zap.Bool("aggregate", c.Collect.Aggregate),
				zap.String("spool_dir", c.Collect.SpoolDir))
			return col.Serve(cmd.Context(), ln)
		},
	}
}

// collectorConfig maps the collect section onto the collector's config.
func collectorConfig(co config.Collect) collector.Config {
	cfg := collector.DefaultConfig()
	cfg.Token = string(co.Token)
	cfg.MaxBodyBytes = int64(co.MaxBodyBytes)
	cfg.MaxEventsPerRequest = co.MaxEventsPerRequest
	cfg.PartitionBy = collector.PartitionBy(co.PartitionKey)
	cfg.BufferRecords = co.BufferRecords
	cfg.BufferBytes = co.BufferBytes
	cfg.BufferWait = co.BufferWait
	cfg.ShutdownGrace = co.ShutdownGrace
	cfg.SpoolDir = co.SpoolDir
	return cfg
}

// streamCheckTimeout bounds the start-up check of the stream.
const streamCheckTimeout = 15 * time.Second

// checkStream fails at start-up, naming the key, when the stream cannot be
// described (missing, no permission, endpoint unreachable), instead of
// accepting events that can never be written.
func checkStream(ctx context.Context, kc *kinesis.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, streamCheckTimeout)
	defer cancel()
	if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)}); err != nil {
		return fmt.Errorf("stream.name: stream %q: %w", name, err)
	}
	return nil
}

// checkCollectStream is checkStream for the collector. When Kinesis
// cannot be reached (no answer, a timeout, 5xx, throttling) it is an
// error too unless withSpool: the collector then starts, spools what it
// accepts and sends it when Kinesis answers, and checkCollectStream
// returns why it could not reach Kinesis as unreachable. A stream that is
// missing or refused is always an error.
func checkCollectStream(ctx context.Context, kc *kinesis.Client, name string, withSpool bool) (unreachable, err error) {
	err = checkStream(ctx, kc, name)
	switch {
	case err == nil:
		return nil, nil
	case awserr.Kinesis(err) != awserr.Retry:
		return nil, err
	case withSpool:
		return err, nil
	}
	return nil, fmt.Errorf("%w; Kinesis is unreachable at start-up, and without collect.spool_dir the collector does not start then "+
		"(what it accepted would be held in memory only); with a spool it starts and sends the events when Kinesis answers", err)
}

// serveTelemetry starts /metrics, /healthz and /readyz on addr (nothing
// when addr is empty); key names the setting in errors. The server
// outlives the graceful shutdown, so /readyz answers 503 while draining:
// the returned func stops it.
func serveTelemetry(addr, key string, reg *prometheus.Registry, ready func() error, log *zap.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	srv, err := telemetry.Listen(addr, reg, ready)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	log.Info("metrics listening", zap.String("addr", srv.Addr()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx); err != nil {
			log.Warn("metrics server", zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }, nil
}
