package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PipelineObserver records a processors.Pipeline's work as Prometheus
// metrics. Safe for concurrent use.
type PipelineObserver struct {
	stageSeconds, sinkSeconds *prometheus.HistogramVec
	stageIn, stageOut         *prometheus.CounterVec
	sinkRecords, sinkBytes    *prometheus.CounterVec
	deadLetters, retries      *prometheus.CounterVec
}

// NewPipelineObserver registers the pipeline metrics on reg.
func NewPipelineObserver(reg prometheus.Registerer) *PipelineObserver {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	o := &PipelineObserver{
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "leasehold_processor_batch_seconds", Help: "Time a processor took for one batch.", Buckets: buckets}, []string{"stage"}),
		sinkSeconds:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "leasehold_sink_write_seconds", Help: "Time a sink took to accept one batch (includes backpressure waits).", Buckets: buckets}, []string{"sink"}),
		stageIn:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_processor_records_in_total", Help: "Records handed to a processor."}, []string{"stage"}),
		stageOut:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_processor_records_out_total", Help: "Records a processor passed on (in minus filtered and failed)."}, []string{"stage"}),
		sinkRecords:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_sink_records_total", Help: "Records accepted by a sink."}, []string{"sink"}),
		sinkBytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_sink_record_bytes_total", Help: "Raw record bytes accepted by a sink."}, []string{"sink"}),
		deadLetters:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_dead_letters_total", Help: "Records dead-lettered, by the stage that gave up."}, []string{"stage"}),
		retries:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_processor_retries_total", Help: "Whole-batch processor failures retried with backoff."}, []string{"stage"}),
	}
	reg.MustRegister(o.stageSeconds, o.sinkSeconds, o.stageIn, o.stageOut, o.sinkRecords, o.sinkBytes, o.deadLetters, o.retries)
	return o
}

// StageDone implements processors.Observer.
func (o *PipelineObserver) StageDone(stage string, in, out int, d time.Duration) {
	o.stageSeconds.WithLabelValues(stage).Observe(d.Seconds())
	o.stageIn.WithLabelValues(stage).Add(float64(in))
	o.stageOut.WithLabelValues(stage).Add(float64(out))
}

// SinkWrite implements processors.Observer.
func (o *PipelineObserver) SinkWrite(sink string, n int, bytes int64, d time.Duration) {
	o.sinkSeconds.WithLabelValues(sink).Observe(d.Seconds())
	o.sinkRecords.WithLabelValues(sink).Add(float64(n))
	o.sinkBytes.WithLabelValues(sink).Add(float64(bytes))
}

// DeadLettered implements processors.Observer.
func (o *PipelineObserver) DeadLettered(stage string, n int) {
	o.deadLetters.WithLabelValues(stage).Add(float64(n))
}

// StageRetry implements processors.Observer.
func (o *PipelineObserver) StageRetry(stage string) { o.retries.WithLabelValues(stage).Inc() }
