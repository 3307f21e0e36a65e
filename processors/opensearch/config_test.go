package opensearch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/processors"
)

func TestValidate(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:9200"}
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"urls", func(c *Config) { c.URL, c.URLs = "", []string{"https://a:9200", "https://b:9200"} }, ""},
		{"no url", func(c *Config) { c.URL = "" }, "url: required"},
		{"url and urls", func(c *Config) { c.URLs = []string{"http://b"} }, "url and urls: set one"},
		{"bad scheme", func(c *Config) { c.URL = "ftp://x" }, "scheme must be http or https"},
		{"bad entry in urls", func(c *Config) { c.URL, c.URLs = "", []string{"http://a", "b:9200"} }, "urls[1]"},
		{"credentials in url", func(c *Config) { c.URL = "https://u:p@x" }, "username and password, not in the URL"},
		{"flush_bytes at the cap", func(c *Config) { c.FlushBytes = 10 << 20 }, "flush_bytes: 10485760 is not below the 10 MiB cap"},
		{"flush_bytes just below the cap", func(c *Config) { c.FlushBytes = 10<<20 - 1 }, ""},
		{"flush_bytes tiny", func(c *Config) { c.FlushBytes = 100 }, "below 1 KiB"},
		{"buffer below flush", func(c *Config) { c.FlushBytes, c.MaxBufferBytes = 1<<20, 1<<19 }, "max_buffer_bytes: 524288 is below flush_bytes (1048576)"},
		{"negative interval", func(c *Config) { c.FlushInterval = -time.Second }, "flush_interval: -1s is negative"},
		{"password alone", func(c *Config) { c.Password = "x" }, "password: set without username"},
		{"sigv4 and basic", func(c *Config) { c.Username = "u"; c.AWSSigV4 = &SigV4Config{} }, "use one kind of authentication"},
		{"sigv4 service", func(c *Config) { c.AWSSigV4 = &SigV4Config{Service: "s3"} }, `aws_sigv4.service: "s3"`},
		{"sigv4 aoss", func(c *Config) { c.AWSSigV4 = &SigV4Config{Service: "aoss", Region: "eu-west-1"} }, ""},
		{"index upper case", func(c *Config) { c.Index = "Events-{yyyy}" }, "not a valid index name"},
		{"index bad token", func(c *Config) { c.Index = "e-{yyyy.ww}" }, "only yyyy, MM, dd, HH"},
		{"index unclosed", func(c *Config) { c.Index = "e-{yyyy" }, "unclosed {"},
		{"index wildcard", func(c *Config) { c.Index = "e-*" }, "not a valid index name"},
		{"index only a date needs a template name", func(c *Config) { c.Index = "{yyyy.MM.dd}" }, "template_name: required"},
		{"index only a date without template", func(c *Config) { c.Index = "{yyyy.MM.dd}"; c.Template = new(false) }, ""},
		{"shards", func(c *Config) { c.Shards = new(0) }, "shards: 0"},
		{"replicas", func(c *Config) { c.Replicas = new(-1) }, "replicas: -1"},
		{"max_retries", func(c *Config) { c.MaxRetries = -1 }, "max_retries: -1 is negative"},
		{"backoff order", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, "backoff_min <= backoff_max"},
		{"template name", func(c *Config) { c.TemplateName = "Bad Name" }, `template_name: "Bad Name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig)):
				t.Fatalf("got %v, want an ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{FlushBytes: 20 << 20, MaxRetries: -2}.Validate()
	for _, want := range []string{"url: required", "flush_bytes", "max_retries"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %q", err, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{URL: "http://x"}.withDefaults()
	if c.Index != DefaultIndex || c.FlushBytes != 5<<20 || c.MaxBufferBytes != 10<<20 || c.FlushInterval != time.Second ||
		!*c.Template || c.TemplateName != "leasehold-events" || *c.TemplatePriority != 100 || c.MaxRetries != 0 ||
		c.BackoffMin != 100*time.Millisecond || c.BackoffMax != 10*time.Second || c.RequestTimeout != time.Minute || c.Name != "opensearch" {
		t.Fatalf("defaults: %+v", c)
	}
	if s := (Config{URL: "http://x", AWSSigV4: &SigV4Config{}}).withDefaults().AWSSigV4.Service; s != "es" {
		t.Fatalf("sigv4 service default %q", s)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"5242880", 5 << 20, false},
		{"5MiB", 5 << 20, false},
		{"512 KiB", 512 << 10, false},
		{"5MB", 5_000_000, false},
		{"100B", 100, false},
		{"5 GiB", 0, true},
		{"-1", 0, true},
		{"lots", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

// TestRegisterDecodesYAML builds the sink the way a pipeline config does.
func TestRegisterDecodesYAML(t *testing.T) {
	f := newFakeCluster(t)
	tests := []struct {
		name string
		yaml string
		want string // error substring, "" for success
	}{
		{"full", "url: " + f.srv.URL + "\nindex: web-{yyyy.MM.dd.HH}\nflush_bytes: 1MiB\nflush_interval: 250ms\nmax_buffer_bytes: 4MiB\n" +
			"username: u\npassword: p\ntls: {insecure_skip_verify: true}\ntemplate: true\ntemplate_priority: 50\nshards: 1\nreplicas: 0\n" +
			"max_retries: 0\nbackoff_min: 10ms\nbackoff_max: 1s\nrequest_timeout: 30s\n", ""},
		{"unknown key", "url: " + f.srv.URL + "\nflush_byte: 1MiB\n", "field flush_byte not found"},
		{"bad size", "url: " + f.srv.URL + "\nflush_bytes: huge\n", `"huge" is not a byte size`},
		{"bad duration", "url: " + f.srv.URL + "\nflush_interval: 5\n", "line 2: cannot unmarshal !!int `5` into time.Duration"},
		{"invalid value", "url: " + f.srv.URL + "\nflush_bytes: 12MiB\n", "10 MiB cap"},
		{"missing ca file", "url: " + f.srv.URL + "\ntls: {ca_file: /nonexistent/ca.pem}\n", "tls.ca_file"},
	}
	reg := processors.NewRegistry()
	Register(reg)
	ctor, err := reg.Sink("opensearch")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &n); err != nil {
				t.Fatal(err)
			}
			s, err := ctor(t.Context(), processors.NewOptions("pipeline.sinks[0]", "", n.Content[0]), processors.Deps{})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			if s.Name() != "opensearch" {
				t.Fatalf("name %q", s.Name())
			}
			cfg := s.(*Sink).cfg
			if cfg.FlushBytes != 1<<20 || cfg.FlushInterval != 250*time.Millisecond || *cfg.TemplatePriority != 50 || cfg.TemplateName != "web" {
				t.Fatalf("decoded %+v", cfg)
			}
		})
	}
}
