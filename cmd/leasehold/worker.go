package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
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
			if c.Worker.FileSink == "" {
				return usageError{errors.New("worker.file_sink: set a path (flag --worker.file-sink, env LEASEHOLD_WORKER_FILE_SINK): it is the worker's only sink until the processor pipeline (OpenSearch, S3, DynamoDB) lands")}
			}
			sink, err := filesink.Open(c.Worker.FileSink, time.Second)
			if err != nil {
				return usageError{err}
			}
			defer sink.Close()

			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			store := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), c.Lease.Table)
			w, err := worker.New(awsconf.Kinesis(awsCfg), store, sink.Factory(), wcfg, log)
			if err != nil {
				return usageError{err}
			}
			log.Info("worker starting", zap.String("worker_id", wcfg.Lease.WorkerID), zap.String("stream", c.Stream.Name), zap.String("lease_table", c.Lease.Table))
			return w.Run(cmd.Context())
		},
	}
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
