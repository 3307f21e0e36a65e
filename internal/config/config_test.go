package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedenceDefaultsFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("lease:\n  duration: 20s\n  table: from-file\nstream:\n  name: file-stream\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"LEASEHOLD_LEASE_TABLE=from-env", "LEASEHOLD_STREAM_NAME=env-stream", "HOME=/x"})
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	BindFlags(fs, &c, nil)
	if err := fs.Parse([]string{"--stream.name=flag-stream"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFlags(fs, &c); err != nil {
		t.Fatal(err)
	}
	if c.Lease.Duration != 20*time.Second {
		t.Errorf("file did not override default: %s", c.Lease.Duration)
	}
	if c.Lease.Table != "from-env" {
		t.Errorf("env did not override file: %s", c.Lease.Table)
	}
	if c.Stream.Name != "flag-stream" {
		t.Errorf("flag did not override env: %s", c.Stream.Name)
	}
	if c.Worker.MaxRecords != Default().Worker.MaxRecords {
		t.Errorf("untouched key lost its default")
	}
}

func TestBadInputNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file string
		env        []string
		flags      []string
		want       string
	}{
		{name: "unknown yaml key", file: "lease:\n  duraton: 5s\n", want: "unknown key lease.duraton (did you mean lease.duration?)"},
		{name: "bad yaml duration", file: "lease:\n  duration: soon\n", want: "line 2: lease.duration: want a duration"},
		{name: "unknown env var", env: []string{"LEASEHOLD_LEASE_DURATOIN=5s"}, want: "did you mean LEASEHOLD_LEASE_DURATION"},
		{name: "bad env duration", env: []string{"LEASEHOLD_LEASE_DURATION=5"}, want: "LEASEHOLD_LEASE_DURATION (key lease.duration): want a duration"},
		{name: "bad env int", env: []string{"LEASEHOLD_WORKER_MAX_RECORDS=lots"}, want: "want an integer"},
		{name: "bad flag", flags: []string{"--worker.max-records=x"}, want: "flag --worker.max-records"},
		{name: "invalid value", env: []string{"LEASEHOLD_STREAM_INITIAL_POSITION=OLDEST"}, want: "stream.initial_position: \"OLDEST\" is not a position; use TRIM_HORIZON, LATEST or AT_TIMESTAMP"},
		{name: "margin above duration", env: []string{"LEASEHOLD_LEASE_SAFETY_MARGIN=30s"}, want: "lease.safety_margin"},
		{name: "at timestamp without time", env: []string{"LEASEHOLD_STREAM_INITIAL_POSITION=AT_TIMESTAMP"}, want: "stream.initial_timestamp"},
		{name: "max records range", env: []string{"LEASEHOLD_WORKER_MAX_RECORDS=20000"}, want: "worker.max_records: 20000 is out of range"},
		{name: "port range", env: []string{"LEASEHOLD_DEV_S3_PORT=70000"}, want: "dev.s3_port"},
		{name: "read rate above the Kinesis limit", env: []string{"LEASEHOLD_WORKER_MAX_READ_RATE=8"}, want: "worker.max_read_rate: 8 is out of range"},
		{name: "read rate zero", env: []string{"LEASEHOLD_WORKER_MAX_READ_RATE=0"}, want: "worker.max_read_rate: 0 is out of range"},
		{name: "idle time under the ceiling", env: []string{"LEASEHOLD_WORKER_IDLE_TIME=250ms"}, want: "worker.idle_time: 250ms is shorter than worker.max_read_rate allows (2 calls per second: at least 500ms"},
		{name: "negative behind threshold", env: []string{"LEASEHOLD_WORKER_BEHIND_THRESHOLD=-1s"}, want: "worker.behind_threshold"},
		{name: "read bytes above the Kinesis limit", env: []string{"LEASEHOLD_WORKER_READ_BYTES_PER_SECOND=4000000"}, want: "worker.read_bytes_per_second: 4000000 is out of range"},
		{name: "gc percent below -1", env: []string{"LEASEHOLD_WORKER_GC_PERCENT=-5"}, want: "worker.gc_percent: -5 is out of range"},
		{name: "gc off without a memory limit", env: []string{"LEASEHOLD_WORKER_GC_PERCENT=-1"}, want: "worker.gc_percent: -1 (off) needs worker.memory_limit"},
		{name: "memory limit too small", env: []string{"LEASEHOLD_WORKER_MEMORY_LIMIT=1000"}, want: "worker.memory_limit: 1000 is out of range"},
		{name: "negative gomaxprocs", env: []string{"LEASEHOLD_WORKER_GOMAXPROCS=-1"}, want: "worker.gomaxprocs: -1 is out of range"},
		{name: "pprof without a metrics address", env: []string{"LEASEHOLD_WORKER_PPROF=true", "LEASEHOLD_WORKER_METRICS_ADDR="}, want: "worker.pprof: needs worker.metrics_addr"},
		{name: "explorer rollups mode", env: []string{"LEASEHOLD_EXPLORE_ROLLUPS=on"}, want: "explore.rollups: \"on\" is not build, read or off"},
		{name: "explorer rollup check", env: []string{"LEASEHOLD_EXPLORE_ROLLUP_CHECK=2h"}, want: "explore.rollup_check"},
		{name: "explorer backend", env: []string{"LEASEHOLD_EXPLORE_BACKEND=solr"}, want: `explore.backend: "solr" is not opensearch or elasticsearch`},
		{name: "explorer elasticsearch without url", env: []string{"LEASEHOLD_EXPLORE_BACKEND=elasticsearch"}, want: "explore.elasticsearch_url: required with explore.backend elasticsearch"},
		{name: "explorer elasticsearch url and cloud id", env: []string{"LEASEHOLD_EXPLORE_BACKEND=elasticsearch", "LEASEHOLD_EXPLORE_ELASTICSEARCH_URL=https://x:9200", "LEASEHOLD_EXPLORE_ELASTICSEARCH_CLOUD_ID=a:b"}, want: "explore.elasticsearch_url: set together with explore.elasticsearch_cloud_id"},
		{name: "explorer elasticsearch url scheme", file: "explore:\n  backend: elasticsearch\n  elasticsearch_url: es:9200\n", want: `explore.elasticsearch_url: "es:9200" is not an http:// or https:// URL`},
		{name: "explorer elasticsearch two kinds of auth", env: []string{"LEASEHOLD_EXPLORE_BACKEND=elasticsearch", "LEASEHOLD_EXPLORE_ELASTICSEARCH_URL=https://x:9200", "LEASEHOLD_EXPLORE_ELASTICSEARCH_USERNAME=u", "LEASEHOLD_EXPLORE_ELASTICSEARCH_API_KEY=k"}, want: "explore.elasticsearch_api_key: set together with explore.elasticsearch_username"},
		{name: "explorer elasticsearch password alone", flags: []string{"--explore.backend=elasticsearch", "--explore.elasticsearch-url=https://x:9200", "--explore.elasticsearch-password=p"}, want: "explore.elasticsearch_password: set without explore.elasticsearch_username"},
		{name: "explorer elasticsearch url without the backend", env: []string{"LEASEHOLD_EXPLORE_ELASTICSEARCH_URL=https://x:9200"}, want: "explore.elasticsearch_url: set, but explore.backend is opensearch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(path, tt.env)
			if err == nil {
				fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
				BindFlags(fs, &c, nil)
				if err = fs.Parse(tt.flags); err == nil {
					err = ApplyFlags(fs, &c)
				}
			}
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFieldsNameEveryKeyThreeWays(t *testing.T) {
	c := Default()
	seen := map[string]bool{}
	for _, f := range Fields(&c) {
		if seen[f.Env] {
			t.Errorf("two keys map to %s", f.Env)
		}
		seen[f.Env] = true
		if f.Doc == "" {
			t.Errorf("%s has no doc tag: the reference would be empty", f.Key)
		}
		if want := EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Key, ".", "_")); f.Env != want {
			t.Errorf("%s: env %s, want %s", f.Key, f.Env, want)
		}
	}
}

func TestEmptyFileIsFine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Fatal(err)
	}
}
