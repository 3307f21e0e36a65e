// Package config loads leasehold's configuration from, in rising order of
// precedence: built-in defaults, a YAML file, LEASEHOLD_* environment
// variables and command-line flags. Every setting has one dotted key
// ("lease.duration") that names it in all three places:
//
//	file:  lease: {duration: 10s}
//	env:   LEASEHOLD_LEASE_DURATION=10s
//	flag:  --lease.duration=10s
//
// Unknown keys, unknown LEASEHOLD_ variables and invalid values are errors at
// start-up that name the key and say what would be valid.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of the leasehold binary.
type Config struct {
	Log    Log    `yaml:"log"`
	Stream Stream `yaml:"stream"`
	Lease  Lease  `yaml:"lease"`
	Worker Worker `yaml:"worker"`
	Dev    Dev    `yaml:"dev"`
	// Pipeline is the processors, sinks and dead_letter sections, kept as
	// YAML for processors.ParseSpec: lists of typed stages do not map to
	// environment variables or flags, so they come from the file only.
	Pipeline yaml.Node `yaml:"pipeline,omitempty" env:"-"`
}

// Log configures the zap logger.
type Log struct {
	Level  string `yaml:"level" doc:"log level: debug, info, warn or error"`
	Format string `yaml:"format" doc:"auto (console on a terminal, else JSON), json or console"`
}

// Stream names the Kinesis stream and where a new shard starts reading.
type Stream struct {
	Name             string `yaml:"name" doc:"Kinesis stream name"`
	InitialPosition  string `yaml:"initial_position" doc:"where a shard with no checkpoint starts: TRIM_HORIZON, LATEST or AT_TIMESTAMP"`
	InitialTimestamp string `yaml:"initial_timestamp" doc:"RFC 3339 time for AT_TIMESTAMP"`
}

// Lease configures the DynamoDB lease table and lease timings.
type Lease struct {
	Table         string        `yaml:"table" doc:"DynamoDB lease table name (created on start if missing)"`
	Duration      time.Duration `yaml:"duration" doc:"a lease not renewed for this long may be taken by another worker"`
	RenewInterval time.Duration `yaml:"renew_interval" doc:"how often a worker writes its heartbeat"`
	TakeInterval  time.Duration `yaml:"take_interval" doc:"how often a worker looks for unowned, expired or unbalanced leases"`
	SafetyMargin  time.Duration `yaml:"safety_margin" doc:"a worker that cannot renew for duration minus this margin stops processing its shards"`
	ShardSync     time.Duration `yaml:"shard_sync_interval" doc:"how often ListShards runs to find new shards"`
}

// Worker configures one worker process.
type Worker struct {
	ID                 string        `yaml:"id" doc:"worker id; default hostname-pid"`
	MaxRecords         int           `yaml:"max_records" doc:"GetRecords limit per call (1-10000)"`
	IdleTime           time.Duration `yaml:"idle_time" doc:"pause between GetRecords calls when a shard returned nothing"`
	ShutdownGrace      time.Duration `yaml:"shutdown_grace" doc:"on SIGTERM, the longest a worker takes to flush, checkpoint, release and exit"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" doc:"how often a shard checkpoints what its sinks have made durable"`
	MetricsAddr        string        `yaml:"metrics_addr" doc:"address for /metrics, /healthz and /readyz (127.0.0.1:0 picks a free port; empty disables)"`
	FileSink           string        `yaml:"file_sink" doc:"append every record to this NDJSON file (the worker's sink until the processor pipeline lands)"`
}

// Dev configures the local stack started by `leasehold dev`.
type Dev struct {
	Dir            string `yaml:"dir" doc:"folder for downloads, data, logs and PID files of the local stack"`
	KinesisPort    int    `yaml:"kinesis_port" doc:"port of the local Kinesis (kinesis-local)"`
	DynamoDBPort   int    `yaml:"dynamodb_port" doc:"port of the local DynamoDB (dynalite)"`
	S3Port         int    `yaml:"s3_port" doc:"port of the local S3 (gofakes3)"`
	OpenSearchPort int    `yaml:"opensearch_port" doc:"HTTP port of the local OpenSearch"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Log: Log{Level: "info", Format: "auto"},
		Stream: Stream{
			Name:            "leasehold-events",
			InitialPosition: "TRIM_HORIZON",
		},
		Lease: Lease{
			Table:         "leasehold-leases",
			Duration:      10 * time.Second,
			RenewInterval: 4 * time.Second,
			TakeInterval:  time.Second,
			SafetyMargin:  2 * time.Second,
			ShardSync:     60 * time.Second,
		},
		Worker: Worker{
			MaxRecords:         1000,
			IdleTime:           250 * time.Millisecond,
			ShutdownGrace:      20 * time.Second,
			CheckpointInterval: 5 * time.Second,
			MetricsAddr:        "127.0.0.1:9464",
		},
		Dev: Dev{
			Dir:            ".leasehold",
			KinesisPort:    4567,
			DynamoDBPort:   8000,
			S3Port:         9000,
			OpenSearchPort: 9200,
		},
	}
}

// Load reads the YAML file at path (skipped when path is empty) over the
// defaults, then applies environ (LEASEHOLD_* variables). Flags are applied
// by the caller with ApplyFlags, then Validate runs.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(b, &c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := ApplyEnv(&c, environ); err != nil {
		return c, err
	}
	return c, nil
}

// decodeYAML applies a YAML document to c key by key, through the same
// parser as environment variables and flags, so that every mistake names
// its dotted key, its line and what would be valid.
func decodeYAML(b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file is fine
	}
	byKey := map[string]Field{}
	var keys []string
	for _, f := range Fields(c) {
		byKey[f.Key] = f
		keys = append(keys, f.Key)
	}
	var errs []error
	var walkNode func(n *yaml.Node, prefix string)
	walkNode = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("line %d: %s must be a mapping of keys", n.Line, orTop(prefix)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			if key == "pipeline" {
				c.Pipeline = *v
				continue
			}
			if f, ok := byKey[key]; ok {
				val := v.Value
				if v.Kind == yaml.SequenceNode {
					var parts []string
					for _, it := range v.Content {
						parts = append(parts, it.Value)
					}
					val = strings.Join(parts, ",")
				} else if v.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("line %d: %s: want a single value", v.Line, key))
					continue
				}
				if err := f.set(val); err != nil {
					errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, key, err))
				}
				continue
			}
			if hasPrefix(keys, key+".") {
				walkNode(v, key)
				continue
			}
			errs = append(errs, fmt.Errorf("line %d: unknown key %s%s", k.Line, key, suggest(key, keys)))
		}
	}
	walkNode(doc.Content[0], "")
	return errors.Join(errs...)
}

func orTop(prefix string) string {
	if prefix == "" {
		return "the document"
	}
	return prefix
}

func hasPrefix(keys []string, p string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// Validate reports every invalid setting at once, each naming its key and
// what would be valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a level; use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "%q is not a format; use auto, json or console", c.Log.Format)
	}
	if c.Stream.Name == "" {
		bad("stream.name", "must not be empty")
	}
	switch c.Stream.InitialPosition {
	case "TRIM_HORIZON", "LATEST":
	case "AT_TIMESTAMP":
		if _, err := time.Parse(time.RFC3339, c.Stream.InitialTimestamp); err != nil {
			bad("stream.initial_timestamp", "%q is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z), needed for AT_TIMESTAMP", c.Stream.InitialTimestamp)
		}
	default:
		bad("stream.initial_position", "%q is not a position; use TRIM_HORIZON, LATEST or AT_TIMESTAMP", c.Stream.InitialPosition)
	}
	if c.Lease.Table == "" {
		bad("lease.table", "must not be empty")
	}
	l := c.Lease
	if l.Duration < time.Second {
		bad("lease.duration", "%s is too short; use at least 1s (default 10s)", l.Duration)
	}
	if l.SafetyMargin <= 0 || l.SafetyMargin >= l.Duration {
		bad("lease.safety_margin", "%s must be above 0 and below lease.duration (%s)", l.SafetyMargin, l.Duration)
	}
	if l.RenewInterval <= 0 || l.RenewInterval > (l.Duration-l.SafetyMargin)/2 {
		bad("lease.renew_interval", "%s must be above 0 and at most half of lease.duration minus lease.safety_margin (%s), so one lost heartbeat does not cost the leases", l.RenewInterval, (l.Duration-l.SafetyMargin)/2)
	}
	if l.TakeInterval <= 0 {
		bad("lease.take_interval", "must be above 0")
	}
	if l.ShardSync < time.Second {
		bad("lease.shard_sync_interval", "%s is too short; use at least 1s", l.ShardSync)
	}
	w := c.Worker
	if w.MaxRecords < 1 || w.MaxRecords > 10000 {
		bad("worker.max_records", "%d is out of range; Kinesis allows 1 to 10000", w.MaxRecords)
	}
	if w.IdleTime < 0 {
		bad("worker.idle_time", "must not be negative")
	}
	if w.CheckpointInterval < 100*time.Millisecond {
		bad("worker.checkpoint_interval", "%s is too short; use at least 100ms (default 5s)", w.CheckpointInterval)
	}
	if w.ShutdownGrace < time.Second {
		bad("worker.shutdown_grace", "%s is too short; use at least 1s", w.ShutdownGrace)
	}
	d := c.Dev
	ports := []struct {
		key  string
		port int
	}{{"dev.kinesis_port", d.KinesisPort}, {"dev.dynamodb_port", d.DynamoDBPort}, {"dev.s3_port", d.S3Port}, {"dev.opensearch_port", d.OpenSearchPort}}
	for _, p := range ports {
		if p.port < 1 || p.port > 65535 {
			bad(p.key, "%d is not a TCP port (1-65535)", p.port)
		}
	}
	if d.Dir == "" {
		bad("dev.dir", "must not be empty")
	}
	return errors.Join(errs...)
}
