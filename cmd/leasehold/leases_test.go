package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

func TestPrintLeases(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	snap := lease.Snapshot{
		Leases: []lease.Lease{
			{ShardID: "shardId-000000000002", Parents: []string{"shardId-000000000000", "shardId-000000000001"}, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}},
			{ShardID: "shardId-000000000000", Epoch: 4, Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.ShardEnd}}},
			{ShardID: "shardId-000000000001", Owner: "w1", Epoch: 2, HandoffTo: "w2", UpdatedAt: now.Add(-3 * time.Second),
				Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: "49590338271490256608559692538361571095921575989136588898", Sub: 3}, MillisBehind: 1500}},
		},
		Workers: []lease.Worker{{ID: "w2", Heartbeat: 7, Held: 1, Stopping: true, UpdatedAt: now.Add(-time.Second)}, {ID: "w1", Heartbeat: 9, Held: 1}},
	}
	var b bytes.Buffer
	printLeases(&b, snap, now)
	out := b.String()
	for _, want := range []string{"SHARD", "shardId-000000000000", "ended", "handoff→w2", "1.5s", "49590338…", "unowned", "shardId-000000000000,shardId-000000000001", "3s ago", "stopping"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "shardId-000000000000") > strings.Index(out, "shardId-000000000001") {
		t.Errorf("shards not sorted:\n%s", out)
	}
}
