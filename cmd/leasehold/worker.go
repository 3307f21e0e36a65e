package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/grid"
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
and worker.gomaxprocs, unless GOGC, GOMEMLIMIT or GOMAXPROCS are set. By
default it runs Go code on one CPU while it is calm (no shard behind,
little CPU used) and on all of them otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			auto := applyRuntime(c.Worker, os.Getenv, log)
			// Signals: run() cancels the command's context on SIGINT and SIGTERM.
			w, err := leasehold.New(cmd.Context(), c, leasehold.WithLogger(log))
			if err != nil {
				return err
			}
			if auto {
				ctx, stop := context.WithCancel(cmd.Context())
				defer stop()
				go adaptProcs(ctx, w, c.Worker.BehindThreshold, log)
			}
			return w.Run(cmd.Context())
		},
	}
}

// applyRuntime sets this process's garbage collector and GOMAXPROCS from
// the worker section, except where the environment (getenv) sets the Go
// variable of the same meaning: an operator's GOGC wins. It logs what is
// in effect, and reports whether GOMAXPROCS is left to adaptProcs
// (worker.gomaxprocs 0, no GOMAXPROCS variable, more than one CPU).
func applyRuntime(w config.Worker, getenv func(string) string, log *zap.Logger) (auto bool) {
	if getenv("GOGC") == "" && w.GCPercent != 0 {
		debug.SetGCPercent(w.GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" && w.MemoryLimit > 0 {
		debug.SetMemoryLimit(w.MemoryLimit)
	}
	if getenv("GOMAXPROCS") == "" && w.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(w.GOMAXPROCS)
	}
	auto = getenv("GOMAXPROCS") == "" && w.GOMAXPROCS == 0 && runtime.GOMAXPROCS(0) > 1
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	log.Info("go runtime", zap.Int("gc_percent", gc), zap.Int64("memory_limit", debug.SetMemoryLimit(-1)),
		zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)), zap.Bool("gomaxprocs_adaptive", auto))
	return auto
}

// Adaptive GOMAXPROCS. A worker that keeps up with a few hundred records
// a second is idle nearly all the time, woken a few dozen times a second
// by its reads and lease calls; with more than one P each wake-up also
// wakes a second thread to look for work, and Go's sysmon thread polls
// while any P runs. On one P the same work costs about a fifth less CPU
// (docs/BENCHMARKS.md). A worker reading a backlog needs every CPU, so
// the process runs on one P only while it is calm: no shard behind and
// under busyCores of CPU, for calmTicks ticks in a row; one busy tick
// restores every CPU. Ticks fall on the worker's poll grid (every
// procsTick rounded up to whole poll intervals), so that they do not wake
// the process on their own.
const (
	procsTick = 2 * time.Second
	busyCores = 0.4
	calmTicks = 5
)

// procs is adaptProcs' state: the decision, apart from the clock and the
// runtime so that it can be tested.
type procs struct {
	max  int             // GOMAXPROCS while busy: Go's default at start
	cur  int             // GOMAXPROCS now
	calm int             // calm ticks in a row
	set  func(n int) int // runtime.GOMAXPROCS
}

// step takes one tick's observation: the CPU cores the process used
// since the last tick, and whether any shard is behind. It reports a
// change of GOMAXPROCS (0: none).
func (p *procs) step(cores float64, behind bool) int {
	if behind || cores > busyCores {
		p.calm = 0
		if p.cur != p.max {
			p.cur = p.max
			p.set(p.cur)
			return p.cur
		}
		return 0
	}
	p.calm++
	if p.cur != 1 && p.calm >= calmTicks {
		p.cur = 1
		p.set(1)
		return 1
	}
	return 0
}

// adaptProcs runs procs on w until ctx ends, then restores Go's default.
func adaptProcs(ctx context.Context, w *leasehold.Worker, behindAbove time.Duration, log *zap.Logger) {
	p := &procs{max: runtime.GOMAXPROCS(0), set: runtime.GOMAXPROCS}
	p.cur = p.max
	defer runtime.GOMAXPROCS(p.max)
	origin, every := w.PollGrid()
	lastCPU, lastAt := processCPU(), time.Now()
	next := gridTick(origin, every, procsTick, lastAt)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cpu, now := processCPU(), time.Now()
		next = gridTick(origin, every, procsTick, next)
		t.Reset(time.Until(next))
		cores := (cpu - lastCPU).Seconds() / now.Sub(lastAt).Seconds()
		lastCPU, lastAt = cpu, now
		behind := false
		for _, ms := range w.Stats().MillisBehind {
			behind = behind || time.Duration(ms)*time.Millisecond > behindAbove
		}
		if n := p.step(cores, behind); n != 0 {
			log.Info("gomaxprocs adapted", zap.Int("gomaxprocs", n), zap.Float64("cores", cores), zap.Bool("behind", behind))
		}
	}
}

// gridTick returns the first tick instant at least tick after after. Tick
// instants are origin + n·step, step being tick rounded up to whole poll
// intervals (every): each is a poll instant too.
func gridTick(origin time.Time, every, tick time.Duration, after time.Time) time.Time {
	step := max(1, (tick+every-1)/every) * every
	return grid.Grid{Origin: origin, Every: step}.AtOrAfter(after.Add(tick))
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
