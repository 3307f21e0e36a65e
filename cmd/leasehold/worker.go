package main

import (
	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold"
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
			// Signals: run() cancels the command's context on SIGINT and SIGTERM.
			return leasehold.Run(cmd.Context(), c, leasehold.WithLogger(log))
		},
	}
}
