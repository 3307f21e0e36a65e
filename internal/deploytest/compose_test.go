// Package deploytest checks the Docker files that cannot run here (no
// Docker engine on our machines) stay consistent with the code.
package deploytest

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/internal/config"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
		StopGrace string `yaml:"stop_grace_period"`
	} `yaml:"services"`
}

func TestComposeFileIsConsistent(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	for _, name := range []string{"localstack", "opensearch", "worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	w := c.Services["worker"]
	if w.Deploy.Replicas < 2 {
		t.Errorf("worker replicas = %d, want N >= 2", w.Deploy.Replicas)
	}
	if !strings.HasPrefix(c.Services["opensearch"].Image, "opensearchproject/opensearch:2.19") {
		t.Errorf("opensearch image %q, want 2.19.x", c.Services["opensearch"].Image)
	}
	// Every LEASEHOLD_ variable must name a real setting, and the
	// resulting config must be valid: the same check the binary makes.
	var env []string
	for k, v := range w.Environment {
		env = append(env, k+"="+v)
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatalf("worker environment: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("worker environment: %v", err)
	}
	if len(w.Command) == 0 || w.Command[0] != "worker" {
		t.Errorf("worker command %v, want [worker]", w.Command)
	}
}

func TestDockerfileBuildsTheBinary(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"./cmd/leasehold", "FROM golang:1.26", "USER nonroot"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
