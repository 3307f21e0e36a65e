package processors

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Options decodes a stage's YAML options strictly into a struct (unknown
// keys are errors naming the key).
type Options struct {
	node *yaml.Node
	path string
	name string
}

// Path is the config path of the stage, e.g. "pipeline.sinks[1]".
func (o Options) Path() string { return o.path }

// Name is the stage's name from the config (`name:`, default its type).
// Sinks use it as their name in checkpoints, so two sinks of one type can
// run side by side.
func (o Options) Name() string { return o.name }

// Decode fills v (a pointer to a struct with yaml tags) from the options.
// Unknown keys and type mismatches are errors naming the stage's path.
func (o Options) Decode(v any) error {
	if o.node == nil {
		return nil
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(o.node); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(b.String()))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	return nil
}

// NewOptions builds Options for the stage called name from a YAML mapping
// node (nil for none).
func NewOptions(path, name string, node *yaml.Node) Options {
	return Options{node: node, path: path, name: name}
}

// ProcessorCtor builds a Processor from its options and the shared
// dependencies. A dependency the type needs but deps lacks is an error
// naming the Deps field.
type ProcessorCtor func(ctx context.Context, opts Options, deps Deps) (Processor, error)

// SinkCtor builds a Sink from its options and the shared dependencies.
type SinkCtor func(ctx context.Context, opts Options, deps Deps) (Sink, error)

// DeadLetterCtor builds a DeadLetterer from its options and the shared
// dependencies.
type DeadLetterCtor func(ctx context.Context, opts Options, deps Deps) (DeadLetterer, error)

// Registry maps the type names used in a pipeline config to constructors.
// A program builds one, registers the built-ins and its own, and hands it
// to Build. Safe for concurrent use.
type Registry struct {
	mu          sync.RWMutex
	processors  map[string]ProcessorCtor
	sinks       map[string]SinkCtor
	deadLetters map[string]DeadLetterCtor
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{processors: map[string]ProcessorCtor{}, sinks: map[string]SinkCtor{}, deadLetters: map[string]DeadLetterCtor{}}
}

// RegisterDeadLetter adds a dead-letter destination type; registering a
// name twice panics.
func (r *Registry) RegisterDeadLetter(name string, ctor DeadLetterCtor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.deadLetters[name]; dup {
		panic("processors: dead-letter type registered twice: " + name)
	}
	r.deadLetters[name] = ctor
}

// DeadLetter returns the constructor for a dead-letter type, or an error
// that lists the known types.
func (r *Registry) DeadLetter(name string) (DeadLetterCtor, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.deadLetters[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown dead_letter type %q; known: %s", name, strings.Join(keys(r.deadLetters), ", "))
}

// RegisterProcessor adds a processor type; registering a name twice panics
// (a programming error, found at start-up).
func (r *Registry) RegisterProcessor(name string, ctor ProcessorCtor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.processors[name]; dup {
		panic("processors: processor type registered twice: " + name)
	}
	r.processors[name] = ctor
}

// RegisterSink adds a sink type; registering a name twice panics.
func (r *Registry) RegisterSink(name string, ctor SinkCtor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.sinks[name]; dup {
		panic("processors: sink type registered twice: " + name)
	}
	r.sinks[name] = ctor
}

// Processor returns the constructor for a processor type, or an error that
// lists the known types.
func (r *Registry) Processor(name string) (ProcessorCtor, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.processors[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown processor type %q; known: %s", name, strings.Join(keys(r.processors), ", "))
}

// Sink returns the constructor for a sink type, or an error that lists the
// known types.
func (r *Registry) Sink(name string) (SinkCtor, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.sinks[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown sink type %q; known: %s", name, strings.Join(keys(r.sinks), ", "))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
