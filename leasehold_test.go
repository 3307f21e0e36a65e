package leasehold_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/processors"
)

var noop = processors.ProcessorFunc(func(_ context.Context, b []*processors.Message) ([]*processors.Message, error) { return b, nil })

// testConfig is a valid configuration whose pipeline is the YAML given,
// with metrics off so that New binds nothing.
func testConfig(t *testing.T, pipeline string) leasehold.Config {
	t.Helper()
	c := leasehold.DefaultConfig()
	c.Worker.MetricsAddr = ""
	c.Worker.ID = "w1"
	if pipeline != "" {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(pipeline), &n); err != nil {
			t.Fatal(err)
		}
		c.Pipeline = *n.Content[0]
	}
	return c
}

func staticAWS() leasehold.Option {
	return leasehold.WithAWSConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
}

// TestNewConfigErrors: every mistake in the configuration or the options
// is a *ConfigError naming what is wrong, found by New before anything
// runs.
func TestNewConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pipeline := "processors: [{type: parse}, {type: mine}]\nsinks: [{type: file, path: " + filepath.Join(dir, "out.ndjson") + "}]\ndead_letter: {type: file, path: " + filepath.Join(dir, "dl.ndjson") + "}"
	for _, tc := range []struct {
		name string
		cfg  func(*leasehold.Config)
		opts []leasehold.Option
		want string
	}{
		{"invalid setting", func(c *leasehold.Config) { c.Lease.Duration = 1 }, nil, "lease.duration"},
		{"no pipeline", func(c *leasehold.Config) { c.Pipeline = yaml.Node{} }, nil, "nothing to write to"},
		{"unknown processor type", nil, nil, `unknown processor type "mine"`},
		{"nil processor", nil, []leasehold.Option{leasehold.WithProcessor("mine", nil)}, `WithProcessor("mine"): the processor is nil`},
		{"processor name taken", nil, []leasehold.Option{leasehold.WithProcessor("parse", noop)}, `processor type "parse" is already registered`},
		{"nil sink", nil, []leasehold.Option{leasehold.WithProcessor("mine", noop), leasehold.WithSink("x", nil)}, `WithSink("x"): the sink is nil`},
		{"options for a processor without", func(c *leasehold.Config) {
			c.Pipeline.Content[1].Content[1].Content = append(c.Pipeline.Content[1].Content[1].Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: "level"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "3"})
		}, []leasehold.Option{leasehold.WithProcessor("mine", noop)}, "field level not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, pipeline)
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			opts := append([]leasehold.Option{staticAWS(), leasehold.WithLogger(zap.NewNop())}, tc.opts...)
			w, err := leasehold.New(context.Background(), c, opts...)
			if err == nil {
				w.Close()
				t.Fatalf("New: no error, want one containing %q", tc.want)
			}
			var ce *leasehold.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("New: %T %v is not a *ConfigError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestNewBuilds: a valid configuration with a processor of one's own
// builds a worker without touching the network; Close releases it.
func TestNewBuilds(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(t, "processors: [{type: parse}, {type: mine}]\nsinks: [{type: file, path: "+filepath.Join(dir, "out.ndjson")+"}]\ndead_letter: {type: file, path: "+filepath.Join(dir, "dl.ndjson")+"}")
	w, err := leasehold.New(context.Background(), c, staticAWS(), leasehold.WithLogger(zap.NewNop()), leasehold.WithProcessor("mine", noop))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ID() != "w1" || w.MetricsAddr() != "" {
		t.Errorf("ID %q MetricsAddr %q, want w1 and none", w.ID(), w.MetricsAddr())
	}
}

// TestLoadConfig: file, then LEASEHOLD_* variables; mistakes are
// *ConfigError naming the key and line.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(path, []byte("stream: {name: from-file}\nlease: {table: from-file}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEASEHOLD_LEASE_TABLE", "from-env")
	c, err := leasehold.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stream.Name != "from-file" || c.Lease.Table != "from-env" {
		t.Errorf("stream %q table %q, want from-file and from-env", c.Stream.Name, c.Lease.Table)
	}
	if err := os.WriteFile(path, []byte("lease:\n  duraton: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = leasehold.LoadConfig(path)
	var ce *leasehold.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "line 2: unknown key lease.duraton") {
		t.Errorf("LoadConfig: %v, want a *ConfigError naming line 2 and lease.duraton", err)
	}
}
