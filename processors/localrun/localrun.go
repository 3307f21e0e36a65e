// Package localrun runs a pipeline on local files or stdin, with no Kinesis
// stream, no lease table and, unless asked, no server: it is `leasehold
// pipeline run`, the way to try a processor or check a log file.
//
// Each input (a file, or stdin) is cut into records exactly as production
// would carry them — a CloudFront standard log file line by line with its
// #Fields header as the ingester sends it, a real-time log or an NDJSON
// file of app events one line per record — and the records go through the
// same processors.Pipeline a worker runs, built by processors.Build from
// the config's pipeline section. Documents go to stdout as NDJSON (or to
// the config's sinks), dead letters to stderr or a file with their reasons,
// and a one-line summary ends the run.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/worker"
)

// ErrUsage is wrapped by every error Run returns for a mistake in its
// options or in the pipeline section (exit code 2): nothing was read.
var ErrUsage = errors.New("localrun: bad usage")

// Options configures Run. Inputs, Pipeline and the flags' values come from
// the user; the writers, the registry and the Deps from the program.
type Options struct {
	// Inputs are the files to read, in order; "-" is Stdin. None means
	// Stdin. Gzip files are decompressed whatever their name.
	Inputs []string
	// Stdin is read for "-" (and when Inputs is empty).
	Stdin io.Reader
	// Format says how inputs are cut into records and parsed: "" or
	// "auto" (a file whose first character is '{' is NDJSON app events,
	// anything else a CloudFront standard log), "cloudfront",
	// "cloudfront_realtime" (needs RealtimeFields) or "app". It sets the
	// parse stage of the default chain; with a pipeline section, that
	// section's parse stage decides and Format must be empty.
	Format string
	// RealtimeFields is the real-time log configuration's field list, in
	// order. It implies Format "cloudfront_realtime". With a pipeline
	// section, put it in the parse stage's fields option instead.
	RealtimeFields []string
	// Pipeline is the config file's pipeline section, or nil. Its
	// processors replace the default chain (parse, useragent,
	// anonymize_ip: the built-ins that need no file or option).
	Pipeline *yaml.Node
	// UseSinks writes to the pipeline section's sinks instead of Stdout.
	// Its dead_letter destination is not used: dead letters of a local
	// run go to Stderr or DeadLetterPath. The section's event_time window
	// (processors.EventTimeWindow) applies with UseSinks, or when the
	// section sets it; documents written to Stdout are not bounded.
	UseSinks bool
	// Stdout receives one NDJSON document per line (without UseSinks).
	Stdout io.Writer
	// Stderr receives dead letters (unless DeadLetterPath is set) and the
	// summary line.
	Stderr io.Writer
	// DeadLetterPath, when set, appends dead letters to this file as
	// NDJSON (deadletter.Line, raw record in base64) instead of Stderr.
	DeadLetterPath string
	// Registry holds the processor and sink types; Deps what their
	// constructors need (AWS clients for the config's sinks).
	Registry *processors.Registry
	Deps     processors.Deps
	// Logger receives the pipeline's logs (retries, sink warnings); nil
	// for none. Dead letters are reported by the run itself, not logged.
	Logger *zap.Logger
	// BatchSize is how many records go through the pipeline at a time.
	// Default 500.
	BatchSize int
}

// Summary is the outcome of a run. Every record read is a document, was
// filtered, or is a dead letter.
type Summary struct {
	Inputs, FailedInputs int
	// Read: records read (lines of the inputs, headers excluded).
	// Documents: records that passed every processor and the first sink
	// accepted. Filtered: records a processor dropped. DeadLetters:
	// records dead-lettered, with the reason.
	Read, Documents, Filtered, DeadLetters int64
	// InputErrors says why each failed input stopped (unreadable, corrupt,
	// a #Fields header that cannot be used).
	InputErrors []error
}

// OK reports whether every input was read to its end and nothing was
// dead-lettered.
func (s Summary) OK() bool { return s.FailedInputs == 0 && s.DeadLetters == 0 }

// String is the one-line summary, e.g. "pipeline run: 1 input, 14 read,
// 12 documents, 0 filtered, 2 dead letters".
func (s Summary) String() string {
	inputs := plural(s.Inputs, "input")
	if s.FailedInputs > 0 {
		inputs += fmt.Sprintf(" (%d failed)", s.FailedInputs)
	}
	return fmt.Sprintf("pipeline run: %s, %d read, %s, %d filtered, %s",
		inputs, s.Read, plural(int(s.Documents), "document"), s.Filtered, plural(int(s.DeadLetters), "dead letter"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Run reads every input through the pipeline and returns the summary. It
// blocks until the inputs are read or ctx ends. An input that cannot be
// read to its end is reported in the summary, and the others are still
// read. The error wraps ErrUsage for bad options or a bad pipeline section
// (then nothing was read); any other error means a sink or the dead-letter
// destination failed, and the run stopped.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if len(o.Inputs) == 0 {
		o.Inputs = []string{"-"}
	}
	plan, err := planRun(o)
	if err != nil {
		return Summary{}, err
	}

	var dl processors.DeadLetterer = &textDeadLetters{w: o.Stderr}
	if o.DeadLetterPath != "" {
		f, err := deadletter.NewFile(deadletter.FileOptions{Path: o.DeadLetterPath})
		if err != nil {
			return Summary{}, fmt.Errorf("%w: --dead-letter: %w", ErrUsage, err)
		}
		dl = f
	}
	counts := &counter{}
	cdl := &countedDeadLetters{dl: dl, c: counts}

	reg := o.Registry
	if reg == nil {
		return Summary{}, usage("no registry")
	}
	// The run's own sink and dead-letter destination join the registry
	// under type names of this run only, so that a registry used for two
	// runs never hands one run's writer to the other.
	stdout := &stdoutSink{w: o.Stdout}
	suffix := fmt.Sprintf("-%p", stdout)
	for i := range plan.spec.Sinks {
		if plan.spec.Sinks[i].Type == stdoutSinkType {
			plan.spec.Sinks[i].Type += suffix
			reg.RegisterSink(plan.spec.Sinks[i].Type, func(context.Context, processors.Options, processors.Deps) (processors.Sink, error) {
				return stdout, nil
			})
		}
	}
	plan.spec.DeadLetter.Type += suffix
	reg.RegisterDeadLetter(plan.spec.DeadLetter.Type, func(context.Context, processors.Options, processors.Deps) (processors.DeadLetterer, error) {
		return cdl, nil
	})
	p, err := processors.Build(ctx, reg, plan.spec, o.Deps, quietDeadLetters(o.Logger))
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	counts.sinks = map[string]bool{}
	for _, st := range plan.spec.Sinks {
		counts.sinks[st.Name] = true
	}
	p.SetObserver(counts)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = p.Close(cctx)
	}()

	sum := Summary{Inputs: len(o.Inputs)}
	factory := p.Factory()
	for _, name := range o.Inputs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		read, inErr, err := runInput(ctx, o, plan, name, factory, cdl)
		sum.Read += read
		if err != nil {
			counts.fill(&sum)
			return sum, err
		}
		if inErr != nil {
			sum.FailedInputs++
			sum.InputErrors = append(sum.InputErrors, inErr)
		}
	}
	if err := stdout.flush(); err != nil {
		return sum, fmt.Errorf("write documents: %w", err)
	}
	counts.fill(&sum)
	return sum, nil
}

// runInput reads one input through a shard of the pipeline named after it.
// It returns the records read, the input's own failure (it could not be
// read to its end) and a run-stopping error (a sink or the dead-letter
// destination failed).
func runInput(ctx context.Context, o Options, plan plan, name string, factory worker.ProcessorFactory, dl processors.DeadLetterer) (read int64, inputErr, err error) {
	src, closeSrc, err := openInput(name, o.Stdin)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err), nil
	}
	defer closeSrc()
	shard := shardName(name)
	sp, err := factory(ctx, worker.Shard{StreamName: StreamName, ShardID: shard, WorkerID: "local"})
	if err != nil {
		return 0, nil, fmt.Errorf("open the pipeline for %s: %w", name, err)
	}
	defer sp.Close(worker.CloseShutdown)

	recs := newRecordSource(src, plan, shard)
	batch := make([]worker.Record, 0, o.BatchSize)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := sp.Process(ctx, batch); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		batch = batch[:0]
		return nil
	}
	for {
		rec, bad, rerr := recs.next()
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				inputErr = fmt.Errorf("%s: %w", name, rerr)
			}
			break
		}
		read++
		if bad != nil {
			// A line that could not become a record (too long): dead-letter
			// it in order, after what came before it.
			if err := send(); err != nil {
				return read, nil, err
			}
			if err := dl.DeadLetter(ctx, []*processors.Message{bad}); err != nil {
				return read, nil, fmt.Errorf("dead-letter: %w", err)
			}
			continue
		}
		batch = append(batch, rec)
		if len(batch) == o.BatchSize {
			if err := send(); err != nil {
				return read, nil, err
			}
		}
	}
	if err := send(); err != nil {
		return read, nil, err
	}
	if _, err := sp.Flush(ctx); err != nil {
		return read, nil, fmt.Errorf("%s: flush: %w", name, err)
	}
	return read, inputErr, nil
}

// StreamName is the stream name of a local run's records: documents carry
// it in source_record.stream, with the input's name as shard_id and the
// line number as sequence_number.
const StreamName = "local"

// shardName names the shard of an input: its path, or "stdin".
func shardName(input string) string {
	if input == "-" {
		return "stdin"
	}
	return input
}

// quietDeadLetters drops the pipeline's "record dead-lettered" log lines:
// a local run reports each dead letter itself, on stderr or in a file,
// and the same line twice on stderr would only be noise.
func quietDeadLetters(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return dropMessage{c, "record dead-lettered"} }))
}

// dropMessage is a zapcore.Core that leaves out entries with one message.
type dropMessage struct {
	zapcore.Core
	msg string
}

func (d dropMessage) With(fields []zapcore.Field) zapcore.Core {
	return dropMessage{d.Core.With(fields), d.msg}
}

func (d dropMessage) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == d.msg {
		return ce
	}
	return d.Core.Check(e, ce)
}

// usage formats an ErrUsage error.
func usage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}
