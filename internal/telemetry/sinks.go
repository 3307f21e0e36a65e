package telemetry

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leasehold/leasehold/processors"
)

// SinkCollector reads the pipeline's sink states at scrape time
// (processors.Pipeline.SinkStates): shards waiting on a sink that fails or
// cannot write, retries, and buffered memory. Safe for concurrent use.
type SinkCollector struct {
	states func() map[string]processors.SinkState

	stalled, cannotWrite, stalledSeconds    *prometheus.Desc
	retries, cannotWriteErrors              *prometheus.Desc
	bufferedBytes, bufferLimit, bufferWaits *prometheus.Desc
}

// NewSinkCollector returns a collector over states (usually
// pipeline.SinkStates).
func NewSinkCollector(states func() map[string]processors.SinkState) *SinkCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("leasehold_sink_"+name, help, []string{"sink"}, nil)
	}
	return &SinkCollector{
		states:            states,
		stalled:           d("stalled_shards", "Shards whose latest write to the sink failed and is being retried; they read nothing meanwhile."),
		cannotWrite:       d("cannot_write_shards", "Shards the destination refuses until an operator acts (shard limit, missing or closed index, no write alias, read-only block, credentials); the worker is not ready while any."),
		stalledSeconds:    d("stalled_seconds", "How long the oldest current stall of the sink has lasted; 0 when none."),
		retries:           d("write_retries_total", "Failed write attempts the sink retried."),
		cannotWriteErrors: d("cannot_write_errors_total", "Retried write attempts the destination refused until an operator acts."),
		bufferedBytes:     d("buffered_bytes", "Bytes the sink holds in memory that are not durable yet, over all shards of this worker."),
		bufferLimit:       d("buffer_limit_bytes", "The sink's worker-wide bound on buffered bytes (max_buffered_bytes of the S3 and search sinks)."),
		bufferWaits:       d("buffer_waits_total", "Writes that waited for buffer memory (backpressure)."),
	}
}

// Describe implements prometheus.Collector.
func (c *SinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.stalled, c.cannotWrite, c.stalledSeconds, c.retries, c.cannotWriteErrors, c.bufferedBytes, c.bufferLimit, c.bufferWaits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SinkCollector) Collect(ch chan<- prometheus.Metric) {
	for sink, st := range c.states() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, sink)
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), sink)
		}
		gauge(c.stalled, float64(st.Stalled))
		gauge(c.cannotWrite, float64(st.CannotWrite))
		age := 0.0
		if !st.StalledSince.IsZero() {
			age = time.Since(st.StalledSince).Seconds()
		}
		gauge(c.stalledSeconds, age)
		counter(c.retries, st.Retries)
		counter(c.cannotWriteErrors, st.CannotWriteErrors)
		gauge(c.bufferedBytes, float64(st.BufferedBytes))
		if st.BufferLimit > 0 {
			gauge(c.bufferLimit, float64(st.BufferLimit))
			counter(c.bufferWaits, st.BufferWaits)
		}
	}
}

// AllReady returns a readiness check that is ready when every check is
// (nil checks are skipped), and otherwise reports every reason.
func AllReady(checks ...func() error) func() error {
	return func() error {
		var errs []error
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
