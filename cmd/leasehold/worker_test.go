package main

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

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

	auto := applyRuntime(config.Default().Worker, noEnv, zap.NewNop())
	if gc() != 100 || debug.SetMemoryLimit(-1) != math.MaxInt64 || runtime.GOMAXPROCS(0) != procs0 || auto != (procs0 > 1) {
		t.Errorf("defaults: GOGC %d, limit %d, GOMAXPROCS %d, adaptive %v; want 100, none, unchanged, adaptive with more than one CPU", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0), auto)
	}

	if applyRuntime(config.Worker{GCPercent: 150, MemoryLimit: 64 << 20, GOMAXPROCS: 1}, noEnv, zap.NewNop()) {
		t.Error("GOMAXPROCS set, yet adaptive")
	}
	if gc() != 150 || debug.SetMemoryLimit(-1) != 64<<20 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("set: GOGC %d, limit %d, GOMAXPROCS %d; want 150, 64 MiB, 1", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0))
	}

	env := func(k string) string {
		return map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB", "GOMAXPROCS": "2"}[k]
	}
	if applyRuntime(config.Worker{GCPercent: 800, MemoryLimit: 128 << 20}, env, zap.NewNop()) {
		t.Error("GOMAXPROCS in the environment, yet adaptive")
	}
	if gc() != 150 || debug.SetMemoryLimit(-1) != 64<<20 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("environment set: GOGC %d, limit %d, GOMAXPROCS %d; want the previous values kept (the runtime read the variables at start)", gc(), debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0))
	}
}

// TestProcsAdapt: one P only after calmTicks calm ticks in a row; every
// CPU again at the first busy tick (a shard behind, or over busyCores).
func TestProcsAdapt(t *testing.T) {
	var set []int
	p := &procs{max: 4, cur: 4, set: func(n int) int { set = append(set, n); return 0 }}
	for i := range calmTicks - 1 {
		if n := p.step(0.01, false); n != 0 {
			t.Fatalf("calm tick %d changed GOMAXPROCS to %d", i+1, n)
		}
	}
	if n := p.step(0.01, false); n != 1 {
		t.Fatalf("after %d calm ticks: %d, want 1", calmTicks, n)
	}
	if n := p.step(0.01, false); n != 0 {
		t.Fatalf("calm on one P changed it to %d", n)
	}
	if n := p.step(0.01, true); n != 4 {
		t.Fatalf("a shard behind: %d, want 4", n)
	}
	for range calmTicks - 1 {
		p.step(0.01, false)
	}
	if n := p.step(busyCores+0.1, false); n != 0 || p.cur != 4 {
		t.Fatalf("busy before calm long enough: changed to %d", n)
	}
	for range calmTicks {
		p.step(0.01, false)
	}
	if n := p.step(busyCores+0.1, false); n != 4 {
		t.Fatalf("CPU over busyCores on one P: %d, want 4", n)
	}
	if want := []int{1, 4, 1, 4}; fmt.Sprint(set) != fmt.Sprint(want) {
		t.Fatalf("GOMAXPROCS set to %v, want %v", set, want)
	}
}

// TestGridTicksFallOnPollInstants: adaptProcs' ticks are poll instants
// of the worker (whole poll intervals from the grid's origin), at least
// procsTick apart and less than a step more.
func TestGridTicksFallOnPollInstants(t *testing.T) {
	origin := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	for _, every := range []time.Duration{time.Second, 300 * time.Millisecond, 200 * time.Millisecond, 3 * time.Second} {
		step := max(1, (procsTick+every-1)/every) * every
		for _, after := range []time.Duration{-5500 * time.Millisecond, 0, 1, 300 * time.Millisecond, time.Second, 7 * time.Second, 7*time.Second + 1} {
			at := origin.Add(after)
			got := gridTick(origin, every, procsTick, at)
			if d := got.Sub(origin); d%every != 0 {
				t.Errorf("every %s, after %s: tick %s after the origin, not a poll instant", every, after, d)
			}
			if gap := got.Sub(at); gap < procsTick || gap >= procsTick+step {
				t.Errorf("every %s, after %s: tick %s later, want [%s, %s)", every, after, gap, procsTick, procsTick+step)
			}
		}
	}
}
