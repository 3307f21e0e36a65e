package processors

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// StageSpec is one entry of the pipeline config: a type, an optional name
// (default: the type), and the type's own options.
type StageSpec struct {
	Type    string
	Name    string
	Options Options
}

// Spec is the `pipeline:` section of the config file:
//
//	pipeline:
//	  processors:
//	    - type: parse
//	    - type: geoip
//	      city_db: /data/GeoLite2-City.mmdb
//	  sinks:
//	    - type: opensearch
//	      url: http://127.0.0.1:9200
//	  dead_letter:
//	    type: s3
//	    bucket: analytics-archive
//	  event_time:            # optional; see EventTimeWindow
//	    max_past: 30d
//	    max_future: 1d
type Spec struct {
	Processors []StageSpec
	Sinks      []StageSpec
	DeadLetter StageSpec
	EventTime  EventTimeWindow
}

// ParseSpec reads the pipeline section of a worker, which needs at least
// one sink and a dead-letter destination. Errors name the config path.
func ParseSpec(node *yaml.Node) (Spec, error) {
	if node == nil || node.Kind == 0 {
		return Spec{}, errors.New("pipeline: missing; the worker needs at least one sink and a dead_letter destination")
	}
	spec, err := ParseStages(node)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if len(spec.Sinks) == 0 {
		errs = append(errs, errors.New("pipeline.sinks: at least one sink is needed"))
	}
	if spec.DeadLetter.Type == "" {
		errs = append(errs, errors.New("pipeline.dead_letter: a destination is needed so that bad records are kept, not dropped"))
	}
	return spec, errors.Join(errs...)
}

// ParseStages reads the pipeline section without requiring sinks or a
// dead-letter destination, for programs that supply their own (`leasehold
// pipeline run` writes to stdout). A missing section is an empty Spec.
// Errors name the config path.
func ParseStages(node *yaml.Node) (Spec, error) {
	var spec Spec
	if node == nil || node.Kind == 0 {
		return spec, nil
	}
	if node.Kind != yaml.MappingNode {
		return spec, fmt.Errorf("pipeline (line %d): want a mapping with processors, sinks and dead_letter", node.Line)
	}
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		switch k.Value {
		case "processors", "sinks":
			if v.Kind != yaml.SequenceNode {
				errs = append(errs, fmt.Errorf("pipeline.%s (line %d): want a list", k.Value, v.Line))
				continue
			}
			for j, item := range v.Content {
				st, err := parseStage(fmt.Sprintf("pipeline.%s[%d]", k.Value, j), item)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if k.Value == "processors" {
					spec.Processors = append(spec.Processors, st)
				} else {
					spec.Sinks = append(spec.Sinks, st)
				}
			}
		case "dead_letter":
			st, err := parseStage("pipeline.dead_letter", v)
			if err != nil {
				errs = append(errs, err)
			}
			spec.DeadLetter = st
		case "event_time":
			var b strings.Builder
			if err := yaml.NewEncoder(&b).Encode(v); err != nil {
				errs = append(errs, fmt.Errorf("pipeline.event_time (line %d): %w", v.Line, err))
				continue
			}
			dec := yaml.NewDecoder(strings.NewReader(b.String()))
			dec.KnownFields(true)
			if err := dec.Decode(&spec.EventTime); err != nil {
				errs = append(errs, fmt.Errorf("pipeline.event_time (line %d): %w", v.Line, err))
			} else if err := spec.EventTime.Validate(); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("pipeline (line %d): unknown key %q; use processors, sinks, dead_letter and event_time", k.Line, k.Value))
		}
	}
	return spec, errors.Join(errs...)
}

func parseStage(path string, n *yaml.Node) (StageSpec, error) {
	if n.Kind != yaml.MappingNode {
		return StageSpec{}, fmt.Errorf("%s (line %d): want a mapping with a type", path, n.Line)
	}
	st := StageSpec{}
	opts := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "type":
			st.Type = v.Value
		case "name":
			st.Name = v.Value
		default:
			opts.Content = append(opts.Content, k, v)
		}
	}
	if st.Type == "" {
		return st, fmt.Errorf("%s (line %d): missing type", path, n.Line)
	}
	if st.Name == "" {
		st.Name = st.Type
	}
	st.Options = NewOptions(path, st.Name, opts)
	return st, nil
}

// Build constructs the pipeline from spec with the registry's
// constructors. Every stage's error is reported, naming its config path.
func Build(ctx context.Context, reg *Registry, spec Spec, deps Deps, log *zap.Logger) (*Pipeline, error) {
	var errs []error
	var stages []Stage
	for _, st := range spec.Processors {
		ctor, err := reg.Processor(st.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.Options.Path(), err))
			continue
		}
		p, err := ctor(ctx, st.Options, deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", st.Options.Path(), st.Type, err))
			continue
		}
		stages = append(stages, Stage{Name: st.Name, Processor: p})
	}
	var sinks []Sink
	for _, st := range spec.Sinks {
		ctor, err := reg.Sink(st.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.Options.Path(), err))
			continue
		}
		s, err := ctor(ctx, st.Options, deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", st.Options.Path(), st.Type, err))
			continue
		}
		sinks = append(sinks, s)
	}
	var dl DeadLetterer
	if spec.DeadLetter.Type != "" {
		ctor, err := reg.DeadLetter(spec.DeadLetter.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline.dead_letter: %w", err))
		} else if dl, err = ctor(ctx, spec.DeadLetter.Options, deps); err != nil {
			errs = append(errs, fmt.Errorf("pipeline.dead_letter (%s): %w", spec.DeadLetter.Type, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range sinks {
			_ = s.Close(ctx)
		}
		return nil, err
	}
	p, err := NewPipeline(stages, sinks, dl, log)
	if err != nil {
		return nil, err
	}
	if err := p.SetEventTimeWindow(spec.EventTime); err != nil {
		return nil, err
	}
	return p, nil
}
