package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const planted = "pl4nted-S3cret-9f3b"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// show is what `config show` prints.
func show(t *testing.T, c Config) string {
	t.Helper()
	b, err := yaml.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnvExpansion(t *testing.T) {
	file := writeFile(t, "c.yaml", `
stream:
  name: ${STREAM}-events
worker:
  max_records: ${MAX}
  id: "${MAX}"
lease:
  table: ${TABLE:-fallback-table}
dev:
  dir: $${HOME}/x and $5
pipeline:
  sinks:
    - type: opensearch
      url: http://${OS_HOST:-127.0.0.1}:${OS_PORT}
      password: ${OS_PASSWORD}
      replicas: ${REPLICAS}
`)
	c, err := Load(file, []string{"STREAM=clicks", "MAX=250", "OS_PORT=9200", "OS_PASSWORD=" + planted, "REPLICAS=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Stream.Name != "clicks-events" || c.Worker.MaxRecords != 250 || c.Worker.ID != "250" || c.Lease.Table != "fallback-table" {
		t.Errorf("expanded settings: %+v %+v %+v", c.Stream, c.Worker, c.Lease)
	}
	if c.Dev.Dir != "${HOME}/x and $5" {
		t.Errorf("escape: dev.dir = %q", c.Dev.Dir)
	}
	var p struct {
		Sinks []struct {
			URL      string `yaml:"url"`
			Password string `yaml:"password"`
			Replicas *int   `yaml:"replicas"`
		} `yaml:"sinks"`
	}
	if err := c.Pipeline.Decode(&p); err != nil {
		t.Fatal(err)
	}
	s := p.Sinks[0]
	if s.URL != "http://127.0.0.1:9200" || s.Password != planted || s.Replicas == nil || *s.Replicas != 0 {
		t.Errorf("pipeline after expansion: %+v", s)
	}
	// A number from a variable decodes into an int field after the
	// pipeline's own round trip through YAML (Options.Decode does this).
	out, err := yaml.Marshal(&c.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "replicas: 0") {
		t.Errorf("re-encoded pipeline types the number as a string:\n%s", out)
	}
	if got := show(t, c); strings.Contains(got, planted) || !strings.Contains(got, "password: '[redacted]'") {
		t.Errorf("config show:\n%s", got)
	}
}

func TestEnvExpansionErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"unset", "stream:\n  name: ${NOPE_NOT_SET}\n", "line 2: stream.name: environment variable NOPE_NOT_SET is not set"},
		{"unset in pipeline", "pipeline:\n  sinks:\n    - type: opensearch\n      password: ${OS_PW}\n", "line 4: pipeline.sinks[0].password: environment variable OS_PW is not set"},
		{"bad name", "stream:\n  name: ${1X}\n", `"1X" is not an environment variable name`},
		{"unterminated", "stream:\n  name: ${X\n", "unterminated ${"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tt.file), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Set but empty is set; a default applies to empty too.
	c, err := Load(writeFile(t, "c.yaml", "worker:\n  id: a${EMPTY}b\nlease:\n  table: ${EMPTY:-t1}\n"), []string{"EMPTY="})
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.ID != "ab" || c.Lease.Table != "t1" {
		t.Errorf("empty variable: id %q, table %q", c.Worker.ID, c.Lease.Table)
	}
}

func TestSecretFiles(t *testing.T) {
	pw := writeFile(t, "os-password", planted+"\n")
	tok := writeFile(t, "token", planted+"-tok\r\n")
	c, err := Load(writeFile(t, "c.yaml", fmt.Sprintf(`
collect:
  token_file: %s
pipeline:
  sinks:
    - type: opensearch
      username: admin
      password_file: %s
  dead_letter:
    type: file
    path: /tmp/dl.ndjson
`, tok, pw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadSecretFiles(); err != nil {
		t.Fatal(err)
	}
	if string(c.Collect.Token) != planted+"-tok" {
		t.Errorf("collect.token from file = %q", string(c.Collect.Token))
	}
	var p struct {
		Sinks []map[string]string `yaml:"sinks"`
	}
	if err := c.Pipeline.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if got := p.Sinks[0]["password"]; got != planted {
		t.Errorf("password from password_file = %q", got)
	}
	if _, ok := p.Sinks[0]["password_file"]; ok {
		t.Errorf("password_file still passed to the sink: %v", p.Sinks[0])
	}
	got := show(t, c)
	if strings.Contains(got, planted) || strings.Count(got, Redacted) != 2 {
		t.Errorf("config show leaks or misses a secret:\n%s", got)
	}

	tests := []struct{ name, file, want string }{
		{"both", "pipeline:\n  sinks:\n    - type: x\n      password: a\n      password_file: " + pw + "\n", "set password or password_file, not both"},
		{"missing", "pipeline:\n  sinks:\n    - type: x\n      password_file: /nonexistent/pw\n", "line 4: pipeline.sinks[0].password_file: read secret: open /nonexistent/pw"},
		{"empty", "pipeline:\n  sinks:\n    - type: x\n      api_key_file: " + writeFile(t, "empty", "\n") + "\n", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tt.file), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), planted) {
				t.Fatalf("error %v, want it to contain %q and no secret", err, tt.want)
			}
		})
	}
	c = Default()
	c.Collect.Token, c.Collect.TokenFile = "x", tok
	if err := c.LoadSecretFiles(); err == nil || !strings.Contains(err.Error(), "collect.token and collect.token_file") {
		t.Errorf("token and token_file: %v", err)
	}
}

// TestExploreSecretFiles: the explorer's store credentials come from
// files as the pipeline's do, and are never shown.
func TestExploreSecretFiles(t *testing.T) {
	key := writeFile(t, "api-key", planted+"-key\n")
	pw := writeFile(t, "os-password", planted+"-os\n")
	c, err := Load(writeFile(t, "c.yaml", fmt.Sprintf(`
explore:
  backend: elasticsearch
  elasticsearch_url: https://es.example.com:9200
  elasticsearch_api_key_file: %s
  opensearch_password_file: %s
`, key, pw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadSecretFiles(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if string(c.Explore.ElasticsearchAPIKey) != planted+"-key" || string(c.Explore.OpenSearchPassword) != planted+"-os" {
		t.Errorf("secrets from files: %q, %q", string(c.Explore.ElasticsearchAPIKey), string(c.Explore.OpenSearchPassword))
	}
	if got := show(t, c); strings.Contains(got, planted) {
		t.Errorf("config show leaks a secret:\n%s", got)
	}
	c = Default()
	c.Explore.ElasticsearchPassword, c.Explore.ElasticsearchPasswordFile = "x", pw
	c.Explore.ElasticsearchAPIKeyFile = "/nonexistent/key"
	err = c.LoadSecretFiles()
	for _, want := range []string{"explore.elasticsearch_password and explore.elasticsearch_password_file: set one", "explore.elasticsearch_api_key_file: read secret: open /nonexistent/key"} {
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), planted) {
			t.Errorf("error %v, want it to contain %q and no secret", err, want)
		}
	}
}

func TestRedactedLeavesOthersAndOriginal(t *testing.T) {
	c, err := Load(writeFile(t, "c.yaml", `
pipeline:
  sinks:
    - type: custom
      client_secret: `+planted+`
      oauth_token: `+planted+`
      nested: {password: `+planted+`, user: alice}
      url: http://x
      token_file_count: 3
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := show(t, c)
	for _, want := range []string{"user: alice", "url: http://x", "token_file_count: 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("config show lost %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, planted) {
		t.Errorf("config show leaks:\n%s", got)
	}
	orig, _ := yaml.Marshal(&c.Pipeline)
	if !strings.Contains(string(orig), planted) {
		t.Error("Redacted changed the original configuration")
	}
	if fmt.Sprint(Secret(planted)) != Redacted || fmt.Sprintf("%#v", Secret(planted)) != Redacted {
		t.Error("Secret formats its value")
	}
}
