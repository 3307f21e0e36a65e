package lease_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestAPollOfASmallFleetIsOneQuery is the cost goal at a spread of 4
// shards per worker (at most a third of the Java KCL's): a worker's poll
// reads the fleet generation, its own item and its two ring neighbours.
// Read item by item (BatchGetItem bills every item on its own, rounded up
// to 4 KB) that was 2 read units a second per worker, above the whole
// budget. The worker items and the generation share one partition, and a
// query of it is billed by their summed size: half a unit for a fleet of
// a few dozen small workers. The old store reads 4 items: 2 units a poll.
func TestAPollOfASmallFleetIsOneQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards, workers = 400, 16
		c := newCluster(t, shards)
		defer c.stopAll()
		var names []string
		for i := range workers {
			names = append(names, fmt.Sprintf("W%02d", i))
			c.start(names[i], fast)
		}
		c.eventually("balanced", time.Minute, func() bool { return balanced(c.held(), shards, names...) })
		time.Sleep(2*time.Minute + 10*time.Second) // past the convergence scans
		scans0, turns0, _ := c.stats()
		u0, calls0 := c.fake.Units(), c.fake.Calls()
		window := 10 * time.Minute
		time.Sleep(window)
		scans1, turns1, _ := c.stats()
		u1, calls1 := c.fake.Units(), c.fake.Calls()
		snap, _ := c.fake.Snapshot(context.Background())
		polls, scans := calls1["Poll"]-calls0["Poll"], scans1-scans0
		reads := u1.Read - u0.Read
		pollReads := reads - float64(scans)*snap.ReadUnits
		t.Logf("%d workers at rest over %s: %d polls, %d scans (%d turns), %.0f read units, %.2f per poll; fleet partition %d bytes",
			workers, window, polls, scans, turns1-turns0, reads, pollReads/float64(polls), snap.FleetBytes)
		if polls < int(float64(workers)*window.Seconds()/fast.TakeInterval.Seconds()*0.8) {
			t.Fatalf("%d polls in %s by %d workers, want about one a take interval each", polls, window, workers)
		}
		if perPoll := pollReads / float64(polls); perPoll > 0.5*1.02 {
			t.Errorf("a poll costs %.2f read units, want 0.5 (one query of the fleet partition), not 2 (four items)", perPoll)
		}
		if perWorkerSecond := reads / workers / window.Seconds(); perWorkerSecond > 0.8 {
			t.Errorf("%.2f read units per worker-second at rest, want at most 0.8 (a spread of 4 at a third of the Java KCL's)", perWorkerSecond)
		}
	})
}
