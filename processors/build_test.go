package processors_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
)

func spec(t *testing.T, src string) (processors.Spec, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return processors.ParseSpec(n.Content[0])
}

func TestParseSpecErrorsNameThePath(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no sinks", "processors: []\ndead_letter: {type: file}\n", "pipeline.sinks: at least one sink"},
		{"no dead letter", "sinks: [{type: mem}]\n", "pipeline.dead_letter"},
		{"stage without type", "sinks: [{url: x}]\ndead_letter: {type: file}\n", "pipeline.sinks[0] (line 1): missing type"},
		{"unknown section", "sinkz: []\nsinks: [{type: mem}]\ndead_letter: {type: file}\n", `unknown key "sinkz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

type opts struct {
	Size int `yaml:"size"`
}

func TestBuildReportsUnknownTypesAndBadOptions(t *testing.T) {
	reg := processors.NewRegistry()
	reg.RegisterSink("mem", func(ctx context.Context, o processors.Options, deps processors.Deps) (processors.Sink, error) {
		var v opts
		if err := o.Decode(&v); err != nil {
			return nil, err
		}
		return &memSink{name: "mem"}, nil
	})
	reg.RegisterDeadLetter("mem", func(ctx context.Context, o processors.Options, deps processors.Deps) (processors.DeadLetterer, error) {
		return &memDL{}, nil
	})
	s, err := spec(t, "processors: [{type: nope}]\nsinks: [{type: mem, sise: 3}]\ndead_letter: {type: mem}\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = processors.Build(context.Background(), reg, s, processors.Deps{}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), `pipeline.processors[0]: unknown processor type "nope"`) || !strings.Contains(err.Error(), "pipeline.sinks[0]: ") || !strings.Contains(err.Error(), "sise") {
		t.Fatalf("got %v", err)
	}
	s, _ = spec(t, "sinks: [{type: mem, size: 3}]\ndead_letter: {type: mem}\n")
	if _, err := processors.Build(context.Background(), reg, s, processors.Deps{}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
}
