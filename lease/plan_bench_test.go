package lease

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPlan10kLeases200Workers is one worker's plan over a balanced
// table of 10,000 leases and 200 workers: the CPU a scan costs beyond the
// read itself.
func BenchmarkPlan10kLeases200Workers(b *testing.B) {
	owners := make([]string, 10000)
	live := map[string]bool{}
	for i := range owners {
		owners[i] = fmt.Sprintf("w%03d", i%200)
		live[owners[i]] = true
	}
	delete(live, "w000")
	snap := Snapshot{Leases: leases(owners...)}
	held := heldBy(snap, "w000")
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		plan(planInput{me: "w000", snap: snap, held: held, live: live, rng: rng})
	}
}
