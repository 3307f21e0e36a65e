package main

import (
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/internal/config"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run one worker: take shard leases and process their records until SIGTERM",
		Long: `Run one worker of the fleet. Start as many as you like, on any hosts: they
share the stream's shards through the lease table (lease.table), balance
them, and take over the shards of a worker that dies within lease.duration.

On SIGTERM or Ctrl-C the worker stops reading, flushes, checkpoints and
releases its leases so peers take them at once, within worker.shutdown_grace.

The process's Go runtime follows worker.gc_percent, worker.memory_limit
and worker.gomaxprocs, unless GOGC, GOMEMLIMIT or GOMAXPROCS are set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			applyRuntime(c.Worker, os.Getenv, log)
			// Signals: run() cancels the command's context on SIGINT and SIGTERM.
			return leasehold.Run(cmd.Context(), c, leasehold.WithLogger(log))
		},
	}
}

// applyRuntime sets this process's garbage collector and GOMAXPROCS from
// the worker section, except where the environment (getenv) sets the Go
// variable of the same meaning: an operator's GOGC wins. It logs what is
// in effect.
func applyRuntime(w config.Worker, getenv func(string) string, log *zap.Logger) {
	if getenv("GOGC") == "" && w.GCPercent != 0 {
		debug.SetGCPercent(w.GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" && w.MemoryLimit > 0 {
		debug.SetMemoryLimit(w.MemoryLimit)
	}
	if getenv("GOMAXPROCS") == "" && w.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(w.GOMAXPROCS)
	}
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	log.Info("go runtime", zap.Int("gc_percent", gc), zap.Int64("memory_limit", debug.SetMemoryLimit(-1)), zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
}
