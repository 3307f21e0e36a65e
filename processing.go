package leasehold

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/worker"
)

// processing is what the worker runs each shard through. ready and
// states are nil for the plain file sink.
type processing struct {
	factory worker.ProcessorFactory
	close   func()
	ready   func() error                           // nil, or why a sink cannot write
	states  func() map[string]processors.SinkState // for the sink metrics
}

// buildProcessing returns the pipeline from the config file, or the plain
// NDJSON file sink given by worker.file_sink (handy for debugging and used
// by the benchmarks).
func buildProcessing(ctx context.Context, c Config, reg *processors.Registry, deps processors.Deps, log *zap.Logger, obs processors.Observer) (processing, error) {
	hasPipeline := c.Pipeline.Kind != 0
	switch {
	case hasPipeline && c.Worker.FileSink != "":
		return processing{}, errors.New("worker.file_sink and pipeline are both set; use one: the pipeline can include a `file` sink")
	case c.Worker.FileSink != "":
		sink, err := filesink.Open(c.Worker.FileSink, time.Second)
		if err != nil {
			return processing{}, err
		}
		return processing{factory: sink.Factory(), close: func() { _ = sink.Close() }}, nil
	case !hasPipeline:
		return processing{}, errors.New("nothing to write to: add a pipeline section to the config file (see README: Pipeline), or set worker.file_sink (--worker.file-sink, LEASEHOLD_WORKER_FILE_SINK) to append raw records to an NDJSON file")
	}
	spec, err := processors.ParseSpec(&c.Pipeline)
	if err != nil {
		return processing{}, err
	}
	p, err := processors.Build(ctx, reg, spec, deps, log)
	if err != nil {
		return processing{}, err
	}
	p.SetObserver(obs)
	return processing{factory: p.Factory(), ready: p.Ready, states: p.SinkStates, close: func() {
		// The sinks' last flush gets its own time: ctx has usually ended.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := p.Close(cctx); err != nil {
			log.Warn("closing sinks", zap.Error(err))
		}
	}}, nil
}
