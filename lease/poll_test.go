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
	testPollCost(t, 16, 0.5, 0.8)
}

// TestAPollOfABigFleetQueriesItsRing: past 8 KB of worker items (here 100
// workers) a query of the whole fleet costs more than a unit; the poll
// queries the identity range from the worker's own item to its last ring
// successor and reads the generation with the batch: 1 unit, not 2.
func TestAPollOfABigFleetQueriesItsRing(t *testing.T) {
	testPollCost(t, 100, 1, 1.1)
}

func testPollCost(t *testing.T, workers int, perPollWant, perWorkerSecondMax float64) {
	synctest.Test(t, func(t *testing.T) {
		const shards = 400
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
		if perPoll := pollReads / float64(polls); perPoll > perPollWant*1.02 {
			t.Errorf("a poll costs %.2f read units, want %.1f, not 2 (four items one by one)", perPoll, perPollWant)
		}
		if perWorkerSecond := reads / float64(workers) / window.Seconds(); perWorkerSecond > perWorkerSecondMax {
			t.Errorf("%.2f read units per worker-second at rest, want at most %.1f", perWorkerSecond, perWorkerSecondMax)
		}
	})
}
