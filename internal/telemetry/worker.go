package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leasehold/leasehold/worker"
)

// WorkerCollector reads a worker's counters at scrape time.
type WorkerCollector struct {
	stats func() worker.Stats

	recordsIn, checkpoints, held, behind                        *prometheus.Desc
	getRecords, throttled, readBytes                            *prometheus.Desc
	taken, handedOff, released, lost, requested, heartbeatFails *prometheus.Desc
	fenced, declared, stalled, readUnits, writeUnits            *prometheus.Desc
}

// NewWorkerCollector returns a collector over stats (usually w.Stats).
func NewWorkerCollector(stats func() worker.Stats) *WorkerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("leasehold_"+name, help, labels, nil)
	}
	return &WorkerCollector{
		stats:          stats,
		recordsIn:      d("records_in_total", "User records handed to the processors (after KPL de-aggregation)."),
		checkpoints:    d("checkpoints_total", "Checkpoints written."),
		held:           d("leases_held", "Shard leases this worker processes."),
		behind:         d("shard_millis_behind_latest", "MillisBehindLatest of the shard's last GetRecords.", "shard_id"),
		getRecords:     d("getrecords_total", "GetRecords calls on the shard, throttled ones included; rate() is the shard's calls per second (at most worker.max_read_rate).", "shard_id"),
		throttled:      d("getrecords_throttled_total", "GetRecords calls on the shard refused with ProvisionedThroughputExceeded (the shard's 5 calls or 2 MB per second, shared by every consumer, were used up).", "shard_id"),
		readBytes:      d("getrecords_bytes_total", "Data and partition key bytes read from the shard.", "shard_id"),
		taken:          d("leases_taken_total", "Leases taken (unowned, expired owner, granted handoff, or own lease re-taken)."),
		handedOff:      d("leases_handed_off_total", "Leases handed to another worker for balance."),
		released:       d("leases_released_total", "Leases released (shutdown, shard end)."),
		lost:           d("leases_lost_total", "Leases lost: taken by another worker or dropped by the self-fence."),
		requested:      d("lease_handoffs_requested_total", "Handoff requests this worker sent."),
		heartbeatFails: d("heartbeat_failures_total", "Heartbeat writes that failed."),
		fenced:         d("leases_fenced_total", "Leases whose processing the self-fence stopped (the heartbeat got too old)."),
		declared:       d("workers_declared_dead_total", "Peers this worker declared dead (their heartbeat stood still for the lease duration)."),
		stalled:        d("shards_stalled", "Shards whose reads fail with errors that will not cure themselves (access denied, KMS key disabled)."),
		readUnits:      d("lease_table_read_units_total", "Read request units the lease table calls consumed, as DynamoDB reported them."),
		writeUnits:     d("lease_table_write_units_total", "Write request units the lease table calls consumed, as DynamoDB reported them."),
	}
}

// Describe implements prometheus.Collector.
func (c *WorkerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.recordsIn, c.checkpoints, c.held, c.behind, c.getRecords, c.throttled, c.readBytes, c.taken, c.handedOff, c.released, c.lost, c.requested, c.heartbeatFails, c.fenced, c.declared, c.stalled, c.readUnits, c.writeUnits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *WorkerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.recordsIn, s.RecordsIn)
	counter(c.checkpoints, s.Checkpoints)
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(len(s.Shards)))
	for shard, ms := range s.MillisBehind {
		ch <- prometheus.MustNewConstMetric(c.behind, prometheus.GaugeValue, float64(ms), shard)
	}
	for shard, r := range s.Reads {
		ch <- prometheus.MustNewConstMetric(c.getRecords, prometheus.CounterValue, float64(r.Calls), shard)
		ch <- prometheus.MustNewConstMetric(c.throttled, prometheus.CounterValue, float64(r.Throttled), shard)
		ch <- prometheus.MustNewConstMetric(c.readBytes, prometheus.CounterValue, float64(r.Bytes), shard)
	}
	counter(c.taken, s.Lease.Taken)
	counter(c.handedOff, s.Lease.HandedOff)
	counter(c.released, s.Lease.Released)
	counter(c.lost, s.Lease.Lost)
	counter(c.requested, s.Lease.Requested)
	counter(c.heartbeatFails, s.Lease.HeartbeatFailures)
	counter(c.fenced, s.Lease.Fenced)
	counter(c.declared, s.Lease.DeclaredDead)
	ch <- prometheus.MustNewConstMetric(c.stalled, prometheus.GaugeValue, float64(s.Stalled))
	ch <- prometheus.MustNewConstMetric(c.readUnits, prometheus.CounterValue, s.TableUnits.Read)
	ch <- prometheus.MustNewConstMetric(c.writeUnits, prometheus.CounterValue, s.TableUnits.Write)
}
