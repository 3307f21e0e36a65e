package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/config"
)

// TestApplyRuntime: the worker section sets the process's GOGC, soft
// memory limit and GOMAXPROCS; the Go environment variables win; zero
// keeps Go's defaults.
func TestApplyRuntime(t *testing.T) {
	gc0 := debug.SetGCPercent(100)
	lim0 := debug.SetMemoryLimit(math.MaxInt64)
	procs0 := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(gc0)
		debug.SetMemoryLimit(lim0)
		runtime.GOMAXPROCS(procs0)
	})
	gc := func() int { v := debug.SetGCPercent(-1); debug.SetGCPercent(v); return v }
	noEnv := func(string) string { return "" }

	applyRuntime(config.Default().Worker, noEnv, zap.NewNop())
	if gc() != 400 || debug.SetMemoryLimit(-1) != math.MaxInt64 || runtime.GOMAXPROCS(0) != procs0 {
		t.Errorf("defaults: GOGC %d, limit %d, GOMAXPROCS %d; want 400, none, unchanged", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0))
	}

	applyRuntime(config.Worker{GCPercent: 150, MemoryLimit: 64 << 20, GOMAXPROCS: 1}, noEnv, zap.NewNop())
	if gc() != 150 || debug.SetMemoryLimit(-1) != 64<<20 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("set: GOGC %d, limit %d, GOMAXPROCS %d; want 150, 64 MiB, 1", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0))
	}

	env := func(k string) string {
		return map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB", "GOMAXPROCS": "2"}[k]
	}
	applyRuntime(config.Worker{GCPercent: 800, MemoryLimit: 128 << 20, GOMAXPROCS: 3}, env, zap.NewNop())
	if gc() != 150 || debug.SetMemoryLimit(-1) != 64<<20 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("environment set: GOGC %d, limit %d, GOMAXPROCS %d; want the previous values kept (the runtime read the variables at start)", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0))
	}
}
