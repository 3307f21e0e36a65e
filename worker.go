package leasehold

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/logging"
	"github.com/leasehold/leasehold/internal/telemetry"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// Option changes what New builds. The zero set of options gives the
// binary's behaviour.
type Option func(*options)

type options struct {
	reg        *processors.Registry
	processors []namedProcessor
	sinks      []namedSink
	log        *zap.Logger
	aws        *aws.Config
	signals    bool
}

type namedProcessor struct {
	name string
	p    processors.Processor
}

type namedSink struct {
	name string
	s    processors.Sink
}

// WithRegistry sets the processor, sink and dead-letter types the
// pipeline section may name. Default: NewRegistry(), the built-ins. Build
// yours with NewRegistry and add your types to keep the built-ins.
func WithRegistry(r *processors.Registry) Option { return func(o *options) { o.reg = r } }

// WithProcessor adds the processor type name, which takes no options in
// the pipeline section and is p, to the registry in use (WithRegistry's or
// the built-ins). p is shared by every shard: it must be safe for
// concurrent use. A name already registered is a *ConfigError from New.
// Default: none.
func WithProcessor(name string, p processors.Processor) Option {
	return func(o *options) { o.processors = append(o.processors, namedProcessor{name, p}) }
}

// WithSink adds the sink type name, which takes no options in the
// pipeline section and is s, to the registry in use. A name already
// registered is a *ConfigError from New. Default: none.
func WithSink(name string, s processors.Sink) Option {
	return func(o *options) { o.sinks = append(o.sinks, namedSink{name, s}) }
}

// WithLogger sets the logger. Default: zap JSON on stderr (console on a
// terminal) at the configuration's log.level and log.format.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithAWSConfig sets the AWS configuration (credentials, region,
// endpoints) of every client. Default: LoadAWSConfig, the SDK's default
// chain.
func WithAWSConfig(cfg aws.Config) Option { return func(o *options) { o.aws = &cfg } }

// WithSignals makes Run stop gracefully on SIGINT or SIGTERM, as when its
// context ends. Default: off; signals keep their usual effect.
func WithSignals() Option { return func(o *options) { o.signals = true } }

// Worker is a worker built by New and not yet stopped. Run it once.
type Worker struct {
	w       *worker.Worker
	log     *zap.Logger
	id      string
	signals bool
	metrics *telemetry.Server // nil when worker.metrics_addr is empty

	stopMetrics context.CancelFunc
	metricsDone chan struct{}
	closeSinks  func()
	closeOnce   sync.Once
}

// Run builds a worker with New and runs it until ctx ends (or a signal,
// WithSignals), then shuts it down gracefully; see Worker.Run.
func Run(ctx context.Context, c Config, opts ...Option) error {
	w, err := New(ctx, c, opts...)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// RunFile loads the configuration from the YAML file at path and the
// LEASEHOLD_* variables (LoadConfig) and runs a worker with it (Run).
func RunFile(ctx context.Context, path string, opts ...Option) error {
	c, err := LoadConfig(path)
	if err != nil {
		return err
	}
	return Run(ctx, c, opts...)
}

// New validates c, resolves the AWS configuration, builds the pipeline
// from c.Pipeline (or the raw NDJSON file sink of worker.file_sink) with
// the registry's types, creates the worker and starts serving /metrics,
// /healthz and /readyz on worker.metrics_addr. It blocks while sinks set
// up (an index template, a table check). Mistakes in c or the options are
// *ConfigError; call Close if you do not Run the worker.
func New(ctx context.Context, c Config, opts ...Option) (*Worker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := c.Validate(); err != nil {
		return nil, configErr(fmt.Errorf("invalid configuration:\n%w", err))
	}
	log := o.log
	if log == nil {
		var err error
		if log, err = logging.New(c.Log.Level, c.Log.Format); err != nil {
			return nil, configErr(err)
		}
	}
	wcfg, err := workerConfig(c)
	if err != nil {
		return nil, configErr(err)
	}
	var awsCfg aws.Config
	if o.aws != nil {
		awsCfg = o.aws.Copy()
	} else if awsCfg, err = LoadAWSConfig(ctx); err != nil {
		return nil, err
	}
	reg, err := o.registry()
	if err != nil {
		return nil, configErr(err)
	}
	metricsReg := telemetry.NewRegistry()
	telemetry.CountAWSCalls(&awsCfg, metricsReg)
	proc, err := buildProcessing(ctx, c, reg, AWSDeps(awsCfg, log), log, telemetry.NewPipelineObserver(metricsReg))
	if err != nil {
		return nil, configErr(err)
	}
	if proc.states != nil {
		metricsReg.MustRegister(telemetry.NewSinkCollector(proc.states))
	}
	store, err := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), c.Lease.Table)
	if err != nil {
		proc.close()
		return nil, configErr(err)
	}
	inner, err := worker.New(awsconf.Kinesis(awsCfg), store, proc.factory, wcfg, log)
	if err != nil {
		proc.close()
		return nil, configErr(err)
	}
	metricsReg.MustRegister(telemetry.NewWorkerCollector(inner.Stats))
	w := &Worker{w: inner, log: log, id: wcfg.Lease.WorkerID, signals: o.signals, closeSinks: proc.close}
	if err := w.serveMetrics(ctx, c.Worker.MetricsAddr, c.Worker.Pprof, metricsReg, proc.ready); err != nil {
		proc.close()
		return nil, configErr(err)
	}
	log.Info("worker ready", zap.String("worker_id", w.id), zap.String("stream", c.Stream.Name), zap.String("lease_table", c.Lease.Table))
	return w, nil
}

// registry returns the registry in use with the options' own types added.
func (o *options) registry() (*processors.Registry, error) {
	reg := o.reg
	if reg == nil {
		reg = NewRegistry()
	}
	for _, np := range o.processors {
		if np.p == nil {
			return nil, fmt.Errorf("WithProcessor(%q): the processor is nil", np.name)
		}
		if _, err := reg.Processor(np.name); err == nil {
			return nil, fmt.Errorf("WithProcessor: processor type %q is already registered", np.name)
		}
		p := np.p
		reg.RegisterProcessor(np.name, func(_ context.Context, opts processors.Options, _ processors.Deps) (processors.Processor, error) {
			return p, opts.Decode(&struct{}{}) // no options: any key is an error naming it
		})
	}
	for _, ns := range o.sinks {
		if ns.s == nil {
			return nil, fmt.Errorf("WithSink(%q): the sink is nil", ns.name)
		}
		if _, err := reg.Sink(ns.name); err == nil {
			return nil, fmt.Errorf("WithSink: sink type %q is already registered", ns.name)
		}
		s := ns.s
		reg.RegisterSink(ns.name, func(_ context.Context, opts processors.Options, _ processors.Deps) (processors.Sink, error) {
			return s, opts.Decode(&struct{}{})
		})
	}
	return reg, nil
}

// Run processes the stream until ctx ends (or SIGINT or SIGTERM arrives,
// with WithSignals); then it stops reading, flushes the sinks, checkpoints
// and releases its leases within worker.shutdown_grace, stops the metrics
// server, closes the sinks and returns. It returns nil after a graceful
// stop, or the error that stopped the worker (the lease table is
// unreachable for longer than a lease, say). Call it once.
func (w *Worker) Run(ctx context.Context) error {
	defer w.Close()
	if w.signals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	w.log.Info("worker starting", zap.String("worker_id", w.id))
	return w.w.Run(ctx)
}

// Close stops the metrics server and closes the sinks. Run calls it; call
// it yourself only for a Worker you do not run. Safe to call twice.
func (w *Worker) Close() {
	w.closeOnce.Do(func() {
		if w.stopMetrics != nil {
			w.stopMetrics()
			<-w.metricsDone
		}
		w.closeSinks()
	})
}

// ID is the worker id: worker.id, or hostname-pid by default.
func (w *Worker) ID() string { return w.id }

// MetricsAddr is the address /metrics, /healthz and /readyz are served
// on (the port chosen for 127.0.0.1:0), or "" when worker.metrics_addr is
// empty.
func (w *Worker) MetricsAddr() string {
	if w.metrics == nil {
		return ""
	}
	return w.metrics.Addr()
}

// Stats returns the worker's counters and the shards it holds. Safe for
// concurrent use.
func (w *Worker) Stats() worker.Stats { return w.w.Stats() }

// PollGrid returns the instants at which the worker polls its caught-up
// shards (origin + n·every): periodic work of the same process scheduled
// on them wakes the process together with the polls.
func (w *Worker) PollGrid() (origin time.Time, every time.Duration) { return w.w.PollGrid() }

// serveMetrics starts /metrics, /healthz and /readyz on addr (nothing when
// addr is empty). /readyz is not ready while the lease heartbeat is not
// current, the lease table refuses coordination, shards stall on errors
// that will not cure themselves (worker.Ready), or a sink cannot write
// (sinksReady, which may be nil).
// The server outlives the worker's graceful shutdown: Close stops it after
// Run returned.
func (w *Worker) serveMetrics(ctx context.Context, addr string, withPprof bool, reg *prometheus.Registry, sinksReady func() error) error {
	if addr == "" {
		return nil
	}
	srv, err := telemetry.Listen(addr, reg, telemetry.AllReady(w.w.Ready, sinksReady))
	if err != nil {
		return fmt.Errorf("worker.metrics_addr: %w", err)
	}
	if withPprof {
		srv.ServePprof()
	}
	w.log.Info("metrics listening", zap.String("addr", srv.Addr()))
	// The server's own context: it must outlive Run's, which ends first.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.metrics, w.stopMetrics, w.metricsDone = srv, cancel, make(chan struct{})
	go func() {
		defer close(w.metricsDone)
		if err := srv.Run(ctx); err != nil {
			w.log.Warn("metrics server", zap.Error(err))
		}
	}()
	return nil
}

// workerConfig maps the user's configuration onto the worker's.
func workerConfig(c Config) (worker.Config, error) {
	id := c.Worker.ID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	start := checkpoint.Position{Sequence: c.Stream.InitialPosition}
	if c.Stream.InitialPosition == "AT_TIMESTAMP" {
		ts, err := time.Parse(time.RFC3339, c.Stream.InitialTimestamp)
		if err != nil {
			return worker.Config{}, fmt.Errorf("stream.initial_timestamp: %w", err)
		}
		start = checkpoint.AtTimestamp(ts)
	}
	return worker.Config{
		StreamName:         c.Stream.Name,
		InitialPosition:    start,
		MaxRecords:         c.Worker.MaxRecords,
		IdleTime:           c.Worker.IdleTime,
		MaxReadRate:        c.Worker.MaxReadRate,
		BehindThreshold:    c.Worker.BehindThreshold,
		ReadBytesPerSecond: c.Worker.ReadBytesPerSecond,
		CheckpointInterval: c.Worker.CheckpointInterval,
		ShutdownGrace:      c.Worker.ShutdownGrace,
		ShardSyncInterval:  c.Lease.ShardSync,
		Lease: lease.Config{
			WorkerID:      id,
			Duration:      c.Lease.Duration,
			RenewInterval: c.Lease.RenewInterval,
			TakeInterval:  c.Lease.TakeInterval,
			SafetyMargin:  c.Lease.SafetyMargin,
			CallTimeout:   c.Lease.CallTimeout,
			ScanInterval:  c.Lease.ScanInterval,
		},
	}, nil
}
