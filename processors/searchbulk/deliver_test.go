package searchbulk

import (
	"testing"
	"time"
)

// TestBackoffWaits pins the waits between tries of a bulk request:
// exponential from backoff_min to backoff_max with equal jitter, each
// wait in [d/2, d].
func TestBackoffWaits(t *testing.T) {
	ss := &shardSink{s: &Engine{opts: Options{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}}
	for _, draw := range []struct {
		name string
		rand func(int64) int64
		want []time.Duration
	}{
		{"shortest", func(int64) int64 { return 0 }, []time.Duration{50, 100, 200, 400, 500, 500}},
		{"longest", func(n int64) int64 { return n - 1 }, []time.Duration{100, 200, 400, 800, 1000, 1000}},
	} {
		bo := ss.newBackoff()
		bo.Rand = draw.rand
		for i, w := range draw.want {
			if got := bo.Next(); got != w*time.Millisecond {
				t.Fatalf("%s: wait %d = %v, want %v", draw.name, i+1, got, w*time.Millisecond)
			}
		}
	}
}
