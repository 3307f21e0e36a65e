package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leasehold/leasehold/collector/spool"
	"github.com/leasehold/leasehold/producer"
)

// metrics are the collector's Prometheus metrics. The vectors are safe for
// concurrent use; producer figures are read at scrape time.
type metrics struct {
	requests *prometheus.CounterVec // by status code
	inFlight prometheus.Gauge
	duration prometheus.Histogram
	events   *prometheus.CounterVec // by outcome
	sent     prometheus.Counter
	failed   prometheus.Counter
	kept     prometheus.Counter // unsent at exit, kept in the spool
	replayed prometheus.Counter // put again from the spool at start
	// spoolAppend times the write and fsync a request waits for.
	spoolAppend prometheus.Histogram

	stats       func() producer.Stats
	budget      *budget
	spool       *spool.Dir  // nil without a spool
	unreachable func() bool // Kinesis not reached since a start without it

	kinesisUnreachable *prometheus.Desc

	spoolEvents, spoolUnsynced, spoolSegments, spoolBytes, spoolAppended, spoolDone, spoolSyncs, spoolCompacted *prometheus.Desc

	bufEvents, bufBytes                                       *prometheus.Desc
	put, written, pfailed, retried, throttled, kinRecords     *prometheus.Desc
	calls, callErrors, buffered, bufferedBytes, callsInFlight *prometheus.Desc
}

func newMetrics(stats func() producer.Stats, b *budget, sp *spool.Dir, unreachable func() bool) *metrics {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leasehold_collector_requests_total",
			Help: "Requests to the collector by HTTP status code.",
		}, []string{"code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leasehold_collector_requests_in_progress",
			Help: "Requests being handled (reading, validating, waiting for buffer room).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leasehold_collector_request_duration_seconds",
			Help:    "Time from the request's arrival to its answer (waits for buffer room included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leasehold_collector_events_total",
			Help: "Events received, by outcome: accepted (202), invalid (failed validation), batch_rejected (valid, in a request rejected for another event), unavailable (503: no buffer room or shutting down).",
		}, []string{"outcome"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leasehold_collector_events_sent_total",
			Help: "Accepted events written to Kinesis.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leasehold_collector_events_failed_total",
			Help: "Accepted events lost: not sent when the shutdown's grace ended, without a spool (each is logged with its event_id).",
		}),
		kept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leasehold_collector_spool_kept_total",
			Help: "Accepted events not sent when the shutdown's grace ended, kept in the spool for the next start.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leasehold_collector_spool_replayed_total",
			Help: "Events a previous run left in the spool, put into the producer again at start.",
		}),
		spoolAppend: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leasehold_collector_spool_append_seconds",
			Help:    "Time a request waits for its events to be written and fsynced to the spool (shared fsyncs included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		stats:       stats,
		budget:      b,
		spool:       sp,
		unreachable: unreachable,

		kinesisUnreachable: d("leasehold_collector_kinesis_unreachable", "1 while Kinesis has not answered since the collector started without reaching it (events are accepted into the spool meanwhile), else 0."),

		spoolEvents:    d("leasehold_collector_spool_events", "Events in the spool not yet confirmed by Kinesis."),
		spoolUnsynced:  d("leasehold_collector_spool_unsynced_marks", "Confirmed events whose done mark is not yet durable (sent again after a crash now)."),
		spoolSegments:  d("leasehold_collector_spool_segments", "Segment files in the spool directory."),
		spoolBytes:     d("leasehold_collector_spool_bytes", "Bytes of the spool's segment files."),
		spoolAppended:  d("leasehold_collector_spool_appended_total", "Events written to the spool."),
		spoolDone:      d("leasehold_collector_spool_done_total", "Events marked done in the spool (confirmed by Kinesis, or not accepted after all)."),
		spoolSyncs:     d("leasehold_collector_spool_fsyncs_total", "Spool appends' fsyncs (one serves every request waiting at the time)."),
		spoolCompacted: d("leasehold_collector_spool_compacted_total", "Unconfirmed events copied forward out of a mostly finished segment."),

		bufEvents:     d("leasehold_collector_buffer_events", "Events accepted and not yet resolved, as counted for admission."),
		bufBytes:      d("leasehold_collector_buffer_bytes", "Bytes of events accepted and not yet resolved, as counted for admission."),
		put:           d("leasehold_producer_records_put_total", "User records accepted by the producer."),
		written:       d("leasehold_producer_records_sent_total", "User records written to Kinesis."),
		pfailed:       d("leasehold_producer_records_failed_total", "User records the producer gave up on."),
		retried:       d("leasehold_producer_records_retried_total", "Record sends that were retries."),
		throttled:     d("leasehold_producer_throttled_total", "Record sends refused by Kinesis throttling."),
		kinRecords:    d("leasehold_producer_kinesis_records_total", "Kinesis records written (a KPL aggregate counts once)."),
		calls:         d("leasehold_producer_calls_total", "PutRecords calls made."),
		callErrors:    d("leasehold_producer_call_errors_total", "PutRecords calls that failed as a whole."),
		buffered:      d("leasehold_producer_buffered_records", "Records in the producer's buffer (in flight included)."),
		bufferedBytes: d("leasehold_producer_buffered_bytes", "Bytes in the producer's buffer."),
		callsInFlight: d("leasehold_producer_in_flight_calls", "PutRecords calls in flight."),
	}
}

// observe counts one answered request.
func (m *metrics) observe(rep reply, took time.Duration) {
	m.requests.WithLabelValues(strconv.Itoa(rep.status)).Inc()
	m.duration.Observe(took.Seconds())
	for _, o := range [...]struct {
		outcome string
		n       int
	}{{"accepted", rep.accepted}, {"invalid", rep.invalid}, {"batch_rejected", rep.batch}, {"unavailable", rep.unavailable}} {
		if o.n > 0 {
			m.events.WithLabelValues(o.outcome).Add(float64(o.n))
		}
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.inFlight.Describe(ch)
	m.duration.Describe(ch)
	m.events.Describe(ch)
	m.sent.Describe(ch)
	m.failed.Describe(ch)
	if m.spool != nil {
		m.kept.Describe(ch)
		m.replayed.Describe(ch)
		m.spoolAppend.Describe(ch)
		for _, d := range []*prometheus.Desc{m.spoolEvents, m.spoolUnsynced, m.spoolSegments, m.spoolBytes, m.spoolAppended,
			m.spoolDone, m.spoolSyncs, m.spoolCompacted} {
			ch <- d
		}
	}
	for _, d := range []*prometheus.Desc{m.bufEvents, m.bufBytes, m.put, m.written, m.pfailed, m.retried, m.throttled,
		m.kinRecords, m.calls, m.callErrors, m.buffered, m.bufferedBytes, m.callsInFlight, m.kinesisUnreachable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.inFlight.Collect(ch)
	m.duration.Collect(ch)
	m.events.Collect(ch)
	m.sent.Collect(ch)
	m.failed.Collect(ch)
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ev, by := m.budget.used()
	gauge(m.bufEvents, ev)
	gauge(m.bufBytes, by)
	s := m.stats()
	counter(m.put, s.RecordsPut)
	counter(m.written, s.RecordsSent)
	counter(m.pfailed, s.RecordsFailed)
	counter(m.retried, s.RecordsRetried)
	counter(m.throttled, s.Throttled)
	counter(m.kinRecords, s.KinesisRecords)
	counter(m.calls, s.Calls)
	counter(m.callErrors, s.CallErrors)
	gauge(m.buffered, s.BufferedRecords)
	gauge(m.bufferedBytes, s.BufferedBytes)
	gauge(m.callsInFlight, s.InFlightCalls)
	down := 0
	if m.unreachable() {
		down = 1
	}
	gauge(m.kinesisUnreachable, down)
	if m.spool == nil {
		return
	}
	m.kept.Collect(ch)
	m.replayed.Collect(ch)
	m.spoolAppend.Collect(ch)
	sp := m.spool.Stats()
	gauge(m.spoolEvents, sp.Pending)
	gauge(m.spoolUnsynced, sp.Unsynced)
	gauge(m.spoolSegments, sp.Segments)
	gauge(m.spoolBytes, int(sp.Bytes))
	counter(m.spoolAppended, sp.Appended)
	counter(m.spoolDone, sp.Done)
	counter(m.spoolSyncs, sp.Syncs)
	counter(m.spoolCompacted, sp.Compacted)
}

// Metrics returns the collector's Prometheus metrics — requests by status
// code, requests in progress, request duration, events by outcome, events sent and failed, the
// admission buffer and the producer's counters — for a registry. Register
// it once per registry. Safe for concurrent use.
func (c *Collector) Metrics() prometheus.Collector { return c.m }
