package localrun

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
)

// Names under which a run registers its own sink and dead-letter types.
const (
	stdoutSinkType      = "stdout"
	localDeadLetterType = "local_run"
)

// anyTime is a window bound that accepts every event time the parsers
// produce (200 years; a time.Duration holds 292).
const anyTime = processors.Duration(200 * 365 * 24 * time.Hour)

// recordKind says how an input is cut into records.
type recordKind int

const (
	// kindSniff: by the input's first character: '{' is lines of app
	// events, anything else a CloudFront standard log.
	kindSniff recordKind = iota
	// kindStandard: a CloudFront standard log, cut as the ingester cuts it.
	kindStandard
	// kindLines: one record per non-blank line (app events, real-time logs).
	kindLines
)

// plan is what a run does: the pipeline to build and how to cut inputs.
type plan struct {
	spec processors.Spec
	kind recordKind
}

// planRun resolves the options into a plan. Errors wrap ErrUsage.
func planRun(o Options) (plan, error) {
	spec, err := processors.ParseStages(o.Pipeline)
	if err != nil {
		return plan{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	format := o.Format
	if len(o.RealtimeFields) > 0 {
		if format != "" && format != transform.FormatCloudFrontRealtime {
			return plan{}, usage("--realtime-fields is for --format %s, not %s", transform.FormatCloudFrontRealtime, format)
		}
		format = transform.FormatCloudFrontRealtime
	}

	var pl plan
	if len(spec.Processors) == 0 {
		stages, err := defaultChain(format, o.RealtimeFields)
		if err != nil {
			return plan{}, err
		}
		spec.Processors = stages
	} else if format != "" {
		return plan{}, usage("the config's pipeline section lists processors: set the format and fields in its parse stage, not with --format or --realtime-fields")
	}
	// How inputs are cut follows the first parse stage's format.
	for _, st := range spec.Processors {
		if st.Type != transform.TypeParse {
			continue
		}
		var po transform.ParserOptions
		if err := st.Options.Decode(&po); err != nil {
			return plan{}, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		switch po.Format {
		case transform.FormatCloudFront:
			pl.kind = kindStandard
		case transform.FormatApp, transform.FormatCloudFrontRealtime:
			pl.kind = kindLines
		}
		break
	}

	if !o.UseSinks && spec.EventTime == (processors.EventTimeWindow{}) {
		// The event-time window keeps odd dates from creating indices and
		// partitions in the sinks; documents written to stdout create none,
		// and a local run is often of old files. It applies when the config
		// sets it, or with --sinks.
		spec.EventTime = processors.EventTimeWindow{MaxPast: anyTime, MaxFuture: anyTime}
	}
	if o.UseSinks {
		if len(spec.Sinks) == 0 {
			return plan{}, usage("--sinks: the config's pipeline section has no sinks")
		}
	} else {
		spec.Sinks = []processors.StageSpec{{Type: stdoutSinkType, Name: stdoutSinkType,
			Options: processors.NewOptions("stdout", stdoutSinkType, nil)}}
	}
	spec.DeadLetter = processors.StageSpec{Type: localDeadLetterType, Name: localDeadLetterType,
		Options: processors.NewOptions("dead letters", localDeadLetterType, nil)}
	pl.spec = spec
	return pl, nil
}

// defaultChain is the chain of a run without a pipeline section: parse (in
// the given format), useragent and anonymize_ip — the built-ins that need
// no file and no option. geoip needs databases, asset_id a pattern and
// filter its rules: add them in a config file.
func defaultChain(format string, fields []string) ([]processors.StageSpec, error) {
	if format == "" {
		format = transform.FormatAuto
	}
	po := transform.ParserOptions{Format: format, Fields: fields}
	if _, err := transform.NewParser(po); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	var node yaml.Node
	if err := node.Encode(po); err != nil {
		return nil, fmt.Errorf("localrun: encode the parse options: %w", err)
	}
	stage := func(typ string, n *yaml.Node) processors.StageSpec {
		return processors.StageSpec{Type: typ, Name: typ, Options: processors.NewOptions("default chain: "+typ, typ, n)}
	}
	return []processors.StageSpec{
		stage(transform.TypeParse, &node),
		stage(transform.TypeUserAgent, nil),
		stage(transform.TypeAnonymizeIP, nil),
	}, nil
}
