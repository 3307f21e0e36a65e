package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/telemetry"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/assetlookup"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/dynamosink"
	"github.com/leasehold/leasehold/processors/elasticsearch"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/processors/s3sink"
	"github.com/leasehold/leasehold/processors/transform"
	"github.com/leasehold/leasehold/worker"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run one worker: take shard leases and process their records until SIGTERM",
		Long: `Run one worker of the fleet. Start as many as you like, on any hosts: they
share the stream's shards through the lease table (lease.table), balance
them, and take over the shards of a worker that dies within lease.duration.

On SIGTERM or Ctrl-C the worker stops reading, flushes, checkpoints and
releases its leases so peers take them at once, within worker.shutdown_grace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			wcfg, err := workerConfig(c)
			if err != nil {
				return usageError{err}
			}
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			reg := telemetry.NewRegistry()
			telemetry.CountAWSCalls(&awsCfg, reg)
			proc, err := buildProcessing(cmd.Context(), c, awsCfg, log, telemetry.NewPipelineObserver(reg))
			if err != nil {
				return usageError{err}
			}
			defer proc.close()
			if proc.states != nil {
				reg.MustRegister(telemetry.NewSinkCollector(proc.states))
			}
			store := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), c.Lease.Table)
			w, err := worker.New(awsconf.Kinesis(awsCfg), store, proc.factory, wcfg, log)
			if err != nil {
				return usageError{err}
			}
			reg.MustRegister(telemetry.NewWorkerCollector(w.Stats))
			stopMetrics, err := serveMetrics(c.Worker.MetricsAddr, c.Worker.Pprof, reg, w, proc.ready, log)
			if err != nil {
				return usageError{err}
			}
			defer stopMetrics()
			log.Info("worker starting", zap.String("worker_id", wcfg.Lease.WorkerID), zap.String("stream", c.Stream.Name), zap.String("lease_table", c.Lease.Table))
			return w.Run(cmd.Context())
		},
	}
}

// serveMetrics starts /metrics, /healthz and /readyz on addr (nothing when
// addr is empty). /readyz is not ready while the lease heartbeat is not
// current or while a sink cannot write (sinksReady, which may be nil).
// The server outlives the worker's graceful shutdown: the returned func
// stops it after Run returned.
func serveMetrics(addr string, withPprof bool, reg *prometheus.Registry, w *worker.Worker, sinksReady func() error, log *zap.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	srv, err := telemetry.Listen(addr, reg, telemetry.AllReady(func() error {
		if !w.Coordinator().Healthy() {
			return errors.New("lease heartbeat not current: not processing shards")
		}
		return nil
	}, sinksReady))
	if err != nil {
		return nil, fmt.Errorf("worker.metrics_addr: %w", err)
	}
	if withPprof {
		srv.ServePprof()
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

// processing is what the worker runs each shard through. ready and
// states are nil for the plain file sink.
type processing struct {
	factory worker.ProcessorFactory
	close   func()
	ready   func() error                           // nil, or why a sink cannot write
	states  func() map[string]processors.SinkState // for the sink metrics
}

// buildProcessing returns the pipeline from the config file, or the plain
// NDJSON file sink given by worker.file_sink (handy for debugging and used
// by the benchmarks).
func buildProcessing(ctx context.Context, c config.Config, awsCfg aws.Config, log *zap.Logger, obs processors.Observer) (processing, error) {
	hasPipeline := c.Pipeline.Kind != 0
	switch {
	case hasPipeline && c.Worker.FileSink != "":
		return processing{}, errors.New("worker.file_sink and pipeline are both set; use one: the pipeline can include a `file` sink")
	case c.Worker.FileSink != "":
		sink, err := filesink.Open(c.Worker.FileSink, time.Second)
		if err != nil {
			return processing{}, err
		}
		return processing{factory: sink.Factory(), close: func() { _ = sink.Close() }}, nil
	case !hasPipeline:
		return processing{}, errors.New("nothing to write to: add a pipeline section to the config file (see README: Pipeline), or set worker.file_sink (--worker.file-sink, LEASEHOLD_WORKER_FILE_SINK) to append raw records to an NDJSON file")
	}
	spec, err := processors.ParseSpec(&c.Pipeline)
	if err != nil {
		return processing{}, err
	}
	env := processors.Env{"s3": awsconf.S3(awsCfg), "dynamodb": awsconf.DynamoDB(awsCfg), "aws_config": awsCfg, "logger": log}
	p, err := processors.Build(ctx, newRegistry(), spec, env, log)
	if err != nil {
		return processing{}, err
	}
	p.SetObserver(obs)
	return processing{factory: p.Factory(), ready: p.Ready, states: p.SinkStates, close: func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := p.Close(cctx); err != nil {
			log.Warn("closing sinks", zap.Error(err))
		}
	}}, nil
}

// newRegistry registers every built-in processor, sink and dead-letter
// type. A program embedding leasehold builds its own registry the same
// way and adds its types.
func newRegistry() *processors.Registry {
	r := processors.NewRegistry()
	transform.Register(r)
	assetlookup.Register(r)
	filesink.Register(r)
	s3sink.Register(r)
	opensearch.Register(r)
	elasticsearch.Register(r)
	dynamosink.Register(r)
	deadletter.Register(r)
	return r
}

// workerConfig maps the user's configuration onto the worker's.
func workerConfig(c config.Config) (worker.Config, error) {
	id := c.Worker.ID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	start := checkpoint.Position{Sequence: c.Stream.InitialPosition}
	if c.Stream.InitialPosition == "AT_TIMESTAMP" {
		ts, err := time.Parse(time.RFC3339, c.Stream.InitialTimestamp)
		if err != nil {
			return worker.Config{}, fmt.Errorf("stream.initial_timestamp: %w", err)
		}
		start = checkpoint.AtTimestamp(ts)
	}
	return worker.Config{
		StreamName:         c.Stream.Name,
		InitialPosition:    start,
		MaxRecords:         c.Worker.MaxRecords,
		IdleTime:           c.Worker.IdleTime,
		MaxReadRate:        c.Worker.MaxReadRate,
		BehindThreshold:    c.Worker.BehindThreshold,
		ReadBytesPerSecond: c.Worker.ReadBytesPerSecond,
		CheckpointInterval: c.Worker.CheckpointInterval,
		ShutdownGrace:      c.Worker.ShutdownGrace,
		ShardSyncInterval:  c.Lease.ShardSync,
		Lease: lease.Config{
			WorkerID:      id,
			Duration:      c.Lease.Duration,
			RenewInterval: c.Lease.RenewInterval,
			TakeInterval:  c.Lease.TakeInterval,
			SafetyMargin:  c.Lease.SafetyMargin,
		},
	}, nil
}
