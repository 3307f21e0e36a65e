package bench

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
)

// On-demand DynamoDB prices the figures are given at (us-east-1, per
// million request units), as issue 10 states them.
const (
	readPrice  = 0.125 / 1e6
	writePrice = 0.625 / 1e6
	// hoursPerMonth is 730 (8,760 / 12).
	hoursPerMonth = 730
)

// Cost is lease-table capacity consumed over a window.
type Cost struct {
	Window time.Duration
	Shards int
	// Read and Write are the units of lease coordination: heartbeats,
	// polls, scans, takes, moves, declarations. Checkpoint writes follow
	// the user's checkpoint interval and are counted apart.
	Read, Write     float64
	CheckpointWrite float64
	ByLabel         map[string]faultproxy.LabelStats
}

// PerShardHour returns coordination read and write units per shard-hour.
func (c Cost) PerShardHour() (read, write float64) {
	sh := float64(c.Shards) * c.Window.Hours()
	if sh == 0 {
		return 0, 0
	}
	return c.Read / sh, c.Write / sh
}

// DollarsPerShardMonth is the coordination cost per shard-month at the
// on-demand prices.
func (c Cost) DollarsPerShardMonth() float64 {
	r, w := c.PerShardHour()
	return (r*readPrice + w*writePrice) * hoursPerMonth
}

// CheckpointDollarsPerShardMonth is the checkpoint writes' cost.
func (c Cost) CheckpointDollarsPerShardMonth() float64 {
	sh := float64(c.Shards) * c.Window.Hours()
	if sh == 0 {
		return 0
	}
	return c.CheckpointWrite / sh * writePrice * hoursPerMonth
}

// costOf turns proxy stats (summed over the workers' proxies) into a Cost.
func costOf(stats []faultproxy.DynamoStats, window time.Duration, shards int) Cost {
	c := Cost{Window: window, Shards: shards, ByLabel: map[string]faultproxy.LabelStats{}}
	for _, s := range stats {
		for l, ls := range s.Labels {
			sum := c.ByLabel[l]
			sum.Calls += ls.Calls
			sum.ReadUnits += ls.ReadUnits
			sum.WriteUnits += ls.WriteUnits
			c.ByLabel[l] = sum
		}
	}
	for l, ls := range c.ByLabel {
		switch l {
		case "checkpoint":
			c.CheckpointWrite += ls.WriteUnits
		case "setup":
		default:
			c.Read += ls.ReadUnits
			c.Write += ls.WriteUnits
		}
	}
	return c
}

// labelCall names what a lease-table request does, from its operation and
// body (the expressions the lease store writes).
func labelCall(op string, body []byte) string {
	var in struct {
		Key              map[string]map[string]string
		Item             map[string]map[string]any
		UpdateExpression string
	}
	_ = json.Unmarshal(body, &in)
	// The partition key says the kind: "shard#<id>" or "fleet" (the
	// generation, sort key "generation", and workers, "worker#<id>").
	pk, sk := in.Key["pk"]["S"], in.Key["sk"]["S"]
	if pk == "" {
		pk, _ = in.Item["pk"]["S"].(string)
		sk, _ = in.Item["sk"]["S"].(string)
	}
	kind := strings.SplitN(pk, "#", 2)[0]
	if kind == "fleet" {
		kind = strings.SplitN(sk, "#", 2)[0]
		if kind == "generation" {
			kind = "fleet"
		}
	}
	u := in.UpdateExpression
	switch op {
	case "Scan":
		return "scan"
	case "BatchGetItem", "Query":
		return "poll"
	case "GetItem":
		return "get"
	case "PutItem":
		if kind == "worker" {
			return "declare dead"
		}
		return "create lease"
	case "DeleteItem":
		if kind == "worker" {
			return "delete worker"
		}
		return "delete lease"
	case "UpdateItem":
		switch {
		case kind == "fleet":
			return "announce"
		case kind == "worker" && strings.Contains(u, "#d = :t"):
			return "declare dead"
		case kind == "worker":
			return "heartbeat"
		case strings.HasPrefix(u, "SET #s = :seq"):
			return "checkpoint"
		case strings.HasPrefix(u, "SET #o = :o, #e = #e + :one"):
			return "take"
		case strings.Contains(u, "#e = #e + :one") && strings.Contains(u, "#o = :to"):
			return "hand over"
		case strings.Contains(u, "#e = #e + :one"):
			return "release"
		case strings.HasPrefix(u, "SET #h = :r"):
			return "request"
		case strings.HasPrefix(u, "REMOVE #h"):
			return "cancel"
		}
	}
	return "setup"
}
