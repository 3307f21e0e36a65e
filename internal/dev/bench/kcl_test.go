package bench

import (
	"math"
	"testing"
)

// TestKCLAtRestArithmetic checks the KCL model against figures worked out
// by hand for 64 leases and 16 workers (spread 4).
func TestKCLAtRestArithmetic(t *testing.T) {
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.5 {
			t.Errorf("%s = %.1f, want %.1f", what, got, want)
		}
	}
	// 28 + 46 + 16 + 30 + 66 + 29 + 53 + 52 + 18 + 15 bytes.
	if got := KCLLeaseItemBytes(); got != 353 {
		t.Errorf("lease item = %d bytes, want 353", got)
	}
	// Renewals: 3,600,000 / (10,000/3 - 25 = 3,308 ms) per lease-hour.
	renewals := 64 * 3600e3 / 3308
	// One scan of 64 × 353 = 22,592 bytes: 6 × 4 KB, eventually
	// consistent: 3 units. Taker every 20,050 ms and election every 5 min
	// by each of 16 workers, shard sync every 2 min by the leader.
	r, w := KCLAtRest(KCL2, 64, 16)
	near("KCL 2 writes", w, renewals)
	near("KCL 2 reads", r, 16*3600e3/20050*3+16*12*3+30*3)
	// KCL 3: 16 metrics reports (234 bytes: one unit) every 30 s and the
	// lock heartbeat; reads: 16 index queries (4 × 74 bytes: half a unit)
	// every 9,975 ms, the leader's scans of leases and metrics (22,592 +
	// 16 × 234 = 26,336 bytes: 3.5 units) every 20 s and 2 min, and 15
	// strongly consistent lock reads every 30 s.
	r, w = KCLAtRest(KCL3, 64, 16)
	near("KCL 3 writes", w, renewals+16*120+120)
	near("KCL 3 reads", r, 16*3600e3/9975*0.5+180*3.5+30*3.5+15*120)
	// Dollars: KCL 2 at spread 4, 64 shards: about $0.51 per shard-month,
	// nearly all of it renewals.
	r, w = KCLAtRest(KCL2, 64, 16)
	if d := dollarsPerShardMonth(r, w, 64); math.Abs(d-0.5098) > 0.0005 {
		t.Errorf("KCL 2 = $%.4f per shard-month, want $0.5098", d)
	}
}

func TestReadUnitsECPerPage(t *testing.T) {
	for _, tc := range []struct {
		bytes int
		want  float64
	}{{0, 0.5}, {4096, 0.5}, {4097, 1}, {1 << 20, 128}, {1<<20 + 1, 128.5}} {
		if got := readUnitsEC(tc.bytes); got != tc.want {
			t.Errorf("readUnitsEC(%d) = %v, want %v", tc.bytes, got, tc.want)
		}
	}
}
