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

	"github.com/leasehold/leasehold/internal/limits"
)

// Config is the whole configuration of the leasehold binary.
type Config struct {
	Log    Log    `yaml:"log"`
	Stream Stream `yaml:"stream"`
	Lease  Lease  `yaml:"lease"`
	Worker Worker `yaml:"worker"`
	// Collect configures `leasehold collect` (and partly `leasehold produce`).
	Collect Collect `yaml:"collect"`
	Dev     Dev     `yaml:"dev"`
	// Ingest configures `leasehold ingest`, `leasehold backfill` and the
	// Lambda function (cmd/leasehold-lambda).
	Ingest Ingest `yaml:"ingest"`
	// Explore configures `leasehold explore`, the asset usage explorer.
	Explore Explore `yaml:"explore"`
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
	Duration      time.Duration `yaml:"duration" doc:"a worker whose heartbeat a peer sees unchanged for this long is declared dead and its leases taken"`
	RenewInterval time.Duration `yaml:"renew_interval" doc:"how often a worker writes its heartbeat"`
	TakeInterval  time.Duration `yaml:"take_interval" doc:"how often a worker looks at the table (a cheap poll, or a scan when it changed) for unowned, orphaned or unbalanced leases"`
	SafetyMargin  time.Duration `yaml:"safety_margin" doc:"a worker whose last successful heartbeat is older than duration minus this margin stops processing its shards"`
	CallTimeout   time.Duration `yaml:"call_timeout" doc:"a lease-table call (but a heartbeat) is abandoned after this long; the fence does not depend on it"`
	ScanInterval  time.Duration `yaml:"scan_interval" doc:"the fleet reads the whole lease table this often even when nothing changed (the workers take turns: each of n workers every n times this)"`
	ShardSync     time.Duration `yaml:"shard_sync_interval" doc:"how often ListShards runs to find new shards"`
}

// Worker configures one worker process.
type Worker struct {
	ID                 string        `yaml:"id" doc:"worker id; default hostname-pid"`
	MaxRecords         int           `yaml:"max_records" doc:"most records per GetRecords call (1-10000); a shard that is behind is read in calls of about read_bytes_per_second / max_read_rate bytes, which may be fewer"`
	IdleTime           time.Duration `yaml:"idle_time" doc:"time from one GetRecords call on a shard to the next while the shard is caught up; a record waits about half of it at the median (at least 1 / max_read_rate)"`
	MaxReadRate        float64       `yaml:"max_read_rate" doc:"most GetRecords calls per second on one shard, also while it is behind (above 0, at most 5: Kinesis' limit per shard, shared by every consumer of the stream)"`
	BehindThreshold    time.Duration `yaml:"behind_threshold" doc:"a shard whose last GetRecords reported more MillisBehindLatest than this, or returned a full batch, is read again as soon as max_read_rate and read_bytes_per_second allow"`
	ReadBytesPerSecond int           `yaml:"read_bytes_per_second" doc:"read rate kept to on one shard: after a call returned B bytes the next waits B / this (100000-2097152; Kinesis serves 2 MiB/s per shard to all consumers together and refuses calls for 5 s after a 10 MiB response)"`
	ShutdownGrace      time.Duration `yaml:"shutdown_grace" doc:"on SIGTERM, the longest a worker takes to flush, checkpoint, release and exit"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" doc:"how often a shard checkpoints what its sinks have made durable"`
	MetricsAddr        string        `yaml:"metrics_addr" doc:"address for /metrics, /healthz and /readyz (127.0.0.1:0 picks a free port; empty disables)"`
	Pprof              bool          `yaml:"pprof" doc:"also serve Go's profiler under /debug/pprof/ on metrics_addr (CPU and heap profiles; keep metrics_addr private)"`
	FileSink           string        `yaml:"file_sink" doc:"append every record to this NDJSON file (the worker's sink until the processor pipeline lands)"`
	GCPercent          int           `yaml:"gc_percent" doc:"Go's GOGC for the leasehold worker process: the heap grows to live data × (1 + this/100) before a collection; -1 turns collection off but near memory_limit (then required); 0 keeps Go's default (100; 400 measured no cheaper at 200 records/s, see docs/BENCHMARKS.md). The GOGC environment variable wins. Only the leasehold worker command applies it, not leasehold.New in your program"`
	MemoryLimit        int64         `yaml:"memory_limit" doc:"Go's soft memory limit (GOMEMLIMIT) for the leasehold worker process, in bytes: near it the garbage collector runs as often as it must, whatever gc_percent says. 0: none. The GOMEMLIMIT environment variable wins. Only the leasehold worker command applies it"`
	GOMAXPROCS         int           `yaml:"gomaxprocs" doc:"most CPUs the leasehold worker process runs Go code on at once (GOMAXPROCS). 0: adaptive, one while the worker is calm (no shard behind by more than behind_threshold, under 0.4 CPU used, for 10 s), which saves about a fifth of an idle worker's CPU (fewer thread wake-ups), and Go's default (the CPUs available) as soon as it is not. The GOMAXPROCS environment variable wins (fixed). Only the leasehold worker command applies it"`
}

// Collect configures the HTTP collector for app events (`leasehold
// collect`); partition_key also applies to `leasehold produce`.
type Collect struct {
	Listen              string        `yaml:"listen" doc:"address of the collector's HTTP API (POST /v1/events)"`
	MetricsAddr         string        `yaml:"metrics_addr" doc:"address for the collector's /metrics, /healthz and /readyz (127.0.0.1:0 picks a free port; empty disables)"`
	Token               Secret        `yaml:"token" doc:"bearer token clients must send (Authorization: Bearer <token>); empty accepts every client; never logged or shown"`
	TokenFile           string        `yaml:"token_file" doc:"file holding collect.token (trailing line breaks dropped), instead of setting it directly"`
	MaxBodyBytes        int           `yaml:"max_body_bytes" doc:"largest request body in bytes (65536 to buffer_bytes); larger requests get 413"`
	MaxEventsPerRequest int           `yaml:"max_events_per_request" doc:"most events in one request (1 to buffer_records); more get 413"`
	Aggregate           bool          `yaml:"aggregate" doc:"pack events into KPL aggregated Kinesis records"`
	PartitionKey        string        `yaml:"partition_key" doc:"event field whose value is the Kinesis partition key: asset_id or tenant_id (collect and produce)"`
	BufferRecords       int           `yaml:"buffer_records" doc:"events accepted (202) but not yet written to Kinesis, at most; when full, requests get 503"`
	BufferBytes         int           `yaml:"buffer_bytes" doc:"bytes of events accepted but not yet written, at most (at least 1 MiB)"`
	BufferWait          time.Duration `yaml:"buffer_wait" doc:"how long a request waits for buffer space before 503 (0 answers 503 at once)"`
	ShutdownGrace       time.Duration `yaml:"shutdown_grace" doc:"on SIGTERM, the longest the collector takes to finish requests and send buffered events"`
	SpoolDir            string        `yaml:"spool_dir" doc:"directory of the durable spool: every event is fsynced there before its 202 and sent again after a crash until Kinesis confirms it; empty keeps events in memory only (a crash loses the buffer)"`
}

// Secret is a setting that must never be shown: it formats, and marshals
// to YAML or JSON, as "[redacted]" when set. Convert it with string() to
// use it.
type Secret string

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString is String, so %#v does not show the secret either.
func (s Secret) GoString() string { return s.String() }

// MarshalText is String, so `config show` and JSON logs do not show the
// secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Ingest configures `leasehold ingest`, `leasehold backfill` and the
// Lambda function (cmd/leasehold-lambda), which send CloudFront log files
// from S3 to the stream (stream.name).
type Ingest struct {
	Concurrency      int           `yaml:"concurrency" doc:"files ingested at once by backfill and ingest (1-64)"`
	ManifestTable    string        `yaml:"manifest_table" doc:"DynamoDB table recording each file's progress so reruns skip finished files and resume partial ones (created if missing); backfill needs it, the Lambda uses it when set, ingest with --resume"`
	Aggregate        bool          `yaml:"aggregate" doc:"pack lines into KPL aggregated records (many lines per Kinesis record); consumers must de-aggregate, as leasehold workers do"`
	RecordsPerSecond int           `yaml:"records_per_second" doc:"cap on records put per second; 0 derives it from the stream's open shards (1,000 each, times capacity_share), or with aggregate leaves it unlimited (an aggregate counts as one record)"`
	BytesPerSecond   int           `yaml:"bytes_per_second" doc:"cap on bytes (data plus partition keys) put per second; 0 derives it from the stream's open shards (1 MiB each, times capacity_share)"`
	CapacityShare    float64       `yaml:"capacity_share" doc:"fraction of the stream's write capacity that derived rates use (above 0, at most 1), leaving the rest to live producers"`
	CheckpointLines  int           `yaml:"checkpoint_lines" doc:"lines between manifest checkpoints of a file, and the most lines of a file in flight; a crash re-sends at most twice this many lines of each file in progress (100-1000000)"`
	ClaimDuration    time.Duration `yaml:"claim_duration" doc:"how long a run's claim on a file lives in the manifest without renewal (renewed every third of it); another run takes a file over after seeing its claim unrenewed this long (1s-10m)"`
}

// Explore configures the asset usage explorer (`leasehold explore`).
type Explore struct {
	Listen string `yaml:"listen" doc:"address of the explorer's web page and API (127.0.0.1 keeps it on this machine; 127.0.0.1:0 picks a free port)"`
	// Backend is the store the explorer reads (and writes its rollups
	// to): the cluster the opensearch or the elasticsearch sink fills. Its
	// connection has keys of its own rather than a reference to a
	// pipeline sink: the explorer usually runs apart from the workers,
	// with credentials that may read the events and write only the
	// rollups, and its keys can come from the environment or flags.
	Backend                         string   `yaml:"backend" doc:"the store to read: opensearch (explore.opensearch_* keys) or elasticsearch (explore.elasticsearch_* keys)"`
	OpenSearchURL                   string   `yaml:"opensearch_url" doc:"base URL of the OpenSearch cluster the opensearch sink writes to"`
	OpenSearchUsername              string   `yaml:"opensearch_username" doc:"basic-auth user for OpenSearch (empty: none)"`
	OpenSearchPassword              Secret   `yaml:"opensearch_password" doc:"basic-auth password for OpenSearch; never logged or shown"`
	OpenSearchPasswordFile          string   `yaml:"opensearch_password_file" doc:"file holding explore.opensearch_password (trailing line breaks dropped), instead of setting it directly"`
	ElasticsearchURL                string   `yaml:"elasticsearch_url" doc:"base URL of the Elasticsearch 8 cluster the elasticsearch sink writes to (https://host:9200); or set elasticsearch_cloud_id"`
	ElasticsearchCloudID            string   `yaml:"elasticsearch_cloud_id" doc:"Elastic Cloud deployment's Cloud ID, instead of elasticsearch_url"`
	ElasticsearchUsername           string   `yaml:"elasticsearch_username" doc:"basic-auth user for Elasticsearch (not with elasticsearch_api_key)"`
	ElasticsearchPassword           Secret   `yaml:"elasticsearch_password" doc:"basic-auth password for Elasticsearch; never logged or shown"`
	ElasticsearchPasswordFile       string   `yaml:"elasticsearch_password_file" doc:"file holding explore.elasticsearch_password (trailing line breaks dropped), instead of setting it directly"`
	ElasticsearchAPIKey             Secret   `yaml:"elasticsearch_api_key" doc:"Elasticsearch API key, base64 of id:key (the 'encoded' field of POST _security/api_key); never logged or shown"`
	ElasticsearchAPIKeyFile         string   `yaml:"elasticsearch_api_key_file" doc:"file holding explore.elasticsearch_api_key (trailing line breaks dropped), instead of setting it directly"`
	ElasticsearchCAFile             string   `yaml:"elasticsearch_ca_file" doc:"PEM file of CA certificates trusted besides the system pool (a self-managed Elasticsearch 8 writes config/certs/http_ca.crt)"`
	ElasticsearchInsecureSkipVerify bool     `yaml:"elasticsearch_insecure_skip_verify" doc:"do not verify Elasticsearch's certificate (a local cluster only)"`
	Index                           string   `yaml:"index" doc:"index pattern to read: the sink's index with its date part as * (leasehold-events-*)"`
	UsersFile                       string   `yaml:"users_file" doc:"YAML list of who may sign in: name, token_sha256, tenant or admin (see docs/EXPLORER.md); required"`
	AppDomains                      []string `yaml:"app_domains" doc:"the platform's own sites: visits they refer count as the channel 'app', not 'websites'"`
	LeaseTable                      string   `yaml:"lease_table" doc:"lease table to read the workers' lag from for the data-freshness line (empty: newest event only)"`
	HighlightMinChange              float64  `yaml:"highlight_min_change" doc:"smallest change in percent that a highlight reports, so small changes stay quiet"`
	HighlightMinCount               int      `yaml:"highlight_min_count" doc:"fewest events (in the larger of the two periods) behind a highlight"`
	// Rollups: daily pre-computed counts that make views of long periods
	// fast (see docs/EXPLORER.md).
	Rollups      string        `yaml:"rollups" doc:"daily rollups of finished days: build (keep them current in the background and read them; needs write access to rollup_prefix-*), read (read those another explorer builds) or off (read events only)"`
	RollupPrefix string        `yaml:"rollup_prefix" doc:"prefix of the rollup indices (<prefix>-d-YYYY.MM, <prefix>-state); the index pattern must not match them"`
	RollupSettle time.Duration `yaml:"rollup_settle" doc:"how long a finished day's events must stay unchanged before it is rolled up; until then it is read from its events"`
	RollupCheck  time.Duration `yaml:"rollup_check" doc:"how long a reading of the event indices' state is reused; a late event on a rolled-up day shows after at most this long"`
}

// Dev configures the local stack started by `leasehold dev`.
type Dev struct {
	Dir            string `yaml:"dir" doc:"folder for downloads, data, logs and PID files of the local stack"`
	KinesisPort    int    `yaml:"kinesis_port" doc:"port of the local Kinesis (kinesis-local)"`
	DynamoDBPort   int    `yaml:"dynamodb_port" doc:"port of the local DynamoDB (dynalite)"`
	S3Port         int    `yaml:"s3_port" doc:"port of the local S3 (gofakes3)"`
	OpenSearchPort int    `yaml:"opensearch_port" doc:"HTTP port of the local OpenSearch"`
	// ElasticsearchPort is the HTTPS port of the local Elasticsearch 8;
	// its transport port is this plus 100.
	ElasticsearchPort int  `yaml:"elasticsearch_port" doc:"HTTPS port of the local Elasticsearch 8 (transport on this plus 100)"`
	Elasticsearch     bool `yaml:"elasticsearch" doc:"start Elasticsearch 8 with 'dev up' (otherwise only with --with elasticsearch or --only)"`
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
			CallTimeout:   5 * time.Second,
			ScanInterval:  2 * time.Minute,
			ShardSync:     60 * time.Second,
		},
		Worker: Worker{
			MaxRecords:         10000,
			IdleTime:           time.Second,
			MaxReadRate:        2,
			BehindThreshold:    time.Second,
			ReadBytesPerSecond: 2_000_000,
			ShutdownGrace:      20 * time.Second,
			CheckpointInterval: 5 * time.Second,
			MetricsAddr:        "127.0.0.1:9464",
		},
		Collect: Collect{
			Listen:              "127.0.0.1:8080",
			MetricsAddr:         "127.0.0.1:9465",
			MaxBodyBytes:        5 << 20,
			MaxEventsPerRequest: 500,
			PartitionKey:        "asset_id",
			BufferRecords:       50_000,
			BufferBytes:         64 << 20,
			BufferWait:          time.Second,
			ShutdownGrace:       20 * time.Second,
		},
		Ingest: Ingest{
			Concurrency:     4,
			ManifestTable:   "leasehold-ingest-manifest",
			Aggregate:       true,
			CapacityShare:   0.8,
			CheckpointLines: 5000,
			ClaimDuration:   30 * time.Second,
		},
		Explore: Explore{
			Listen:             "127.0.0.1:8090",
			Backend:            "opensearch",
			OpenSearchURL:      "http://127.0.0.1:9200",
			Index:              "leasehold-events-*",
			HighlightMinChange: 50,
			HighlightMinCount:  20,
			Rollups:            "build",
			RollupPrefix:       "leasehold-rollups",
			RollupSettle:       10 * time.Minute,
			RollupCheck:        5 * time.Second,
		},
		Dev: Dev{
			Dir:            ".leasehold",
			KinesisPort:    4567,
			DynamoDBPort:   8000,
			S3Port:         9000,
			OpenSearchPort: 9200,
			// 9250: clear of OpenSearch's 9200 and its transport 9300;
			// Elasticsearch's transport takes 9350.
			ElasticsearchPort: 9250,
		},
	}
}

// Load reads the YAML file at path (skipped when path is empty) over the
// defaults, then applies environ (LEASEHOLD_* variables). In the file,
// ${NAME} and ${NAME:-default} in values are replaced from environ (an
// unset variable is an error naming it), and a secret pipeline option
// <key>_file (IsSecretKey) is replaced by <key> holding the file's
// content. Flags are applied by the caller with ApplyFlags, then
// LoadSecretFiles and Validate run.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(b, &c, lookupIn(environ)); err != nil {
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
func decodeYAML(b []byte, c *Config, lookup func(string) (string, bool)) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file is fine
	}
	if errs := expandEnv(&doc, "", lookup); len(errs) > 0 {
		return errors.Join(errs...)
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
				errs = append(errs, readSecretFiles(v, key)...)
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
	errs = append(errs, limits.Lease{Duration: l.Duration, SafetyMargin: l.SafetyMargin, RenewInterval: l.RenewInterval,
		TakeInterval: l.TakeInterval, ScanInterval: l.ScanInterval}.Check()...)
	if l.CallTimeout < 100*time.Millisecond {
		bad("lease.call_timeout", "%s is too short; use at least 100ms (default 5s)", l.CallTimeout)
	}
	if l.ShardSync < time.Second {
		bad("lease.shard_sync_interval", "%s is too short; use at least 1s", l.ShardSync)
	}
	w := c.Worker
	errs = append(errs, limits.Read{MaxRecords: w.MaxRecords, MaxReadRate: w.MaxReadRate, IdleTime: w.IdleTime,
		BehindThreshold: w.BehindThreshold, ReadBytesPerSecond: w.ReadBytesPerSecond, ShutdownGrace: w.ShutdownGrace}.Check()...)
	if w.Pprof && w.MetricsAddr == "" {
		bad("worker.pprof", "needs worker.metrics_addr: the profiler is served there")
	}
	if w.CheckpointInterval < 100*time.Millisecond {
		bad("worker.checkpoint_interval", "%s is too short; use at least 100ms (default 5s)", w.CheckpointInterval)
	}
	if w.GCPercent < -1 {
		bad("worker.gc_percent", "%d is out of range; use -1 (off), 0 (Go's default) or a percentage above 0 (default 0)", w.GCPercent)
	}
	if w.MemoryLimit < 0 || w.MemoryLimit > 0 && w.MemoryLimit < 32<<20 {
		bad("worker.memory_limit", "%d is out of range; use 0 (none) or at least 33554432 bytes (32 MiB)", w.MemoryLimit)
	}
	if w.GCPercent == -1 && w.MemoryLimit == 0 {
		bad("worker.gc_percent", "-1 (off) needs worker.memory_limit: without a limit the heap would grow without bound")
	}
	if w.GOMAXPROCS < 0 {
		bad("worker.gomaxprocs", "%d is out of range; use 0 (Go's default) or a number of CPUs", w.GOMAXPROCS)
	}
	errs = append(errs, c.Collect.validate()...)
	errs = append(errs, c.Ingest.validate()...)
	errs = append(errs, c.Explore.validate()...)
	d := c.Dev
	ports := []struct {
		key  string
		port int
	}{{"dev.kinesis_port", d.KinesisPort}, {"dev.dynamodb_port", d.DynamoDBPort}, {"dev.s3_port", d.S3Port}, {"dev.opensearch_port", d.OpenSearchPort}, {"dev.elasticsearch_port", d.ElasticsearchPort}}
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

// validate checks the collect section; each error names its key.
func (co Collect) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if co.Listen == "" {
		bad("collect.listen", "must not be empty; use host:port such as 127.0.0.1:8080")
	}
	if co.BufferRecords < 1 {
		bad("collect.buffer_records", "%d must be at least 1 (default 50000)", co.BufferRecords)
	}
	if co.BufferBytes < 1<<20 {
		bad("collect.buffer_bytes", "%d is below 1 MiB (1048576), the largest Kinesis record", co.BufferBytes)
	}
	if co.MaxBodyBytes < 64<<10 || co.MaxBodyBytes > co.BufferBytes {
		bad("collect.max_body_bytes", "%d is out of range; use 65536 (one event of the largest size) to collect.buffer_bytes (%d)", co.MaxBodyBytes, co.BufferBytes)
	}
	if co.MaxEventsPerRequest < 1 || co.MaxEventsPerRequest > co.BufferRecords {
		bad("collect.max_events_per_request", "%d is out of range; use 1 to collect.buffer_records (%d)", co.MaxEventsPerRequest, co.BufferRecords)
	}
	switch co.PartitionKey {
	case "asset_id", "tenant_id":
	default:
		bad("collect.partition_key", "%q is not a partition key; use asset_id or tenant_id", co.PartitionKey)
	}
	if co.BufferWait < 0 {
		bad("collect.buffer_wait", "must not be negative")
	}
	if co.ShutdownGrace < time.Second {
		bad("collect.shutdown_grace", "%s is too short; use at least 1s", co.ShutdownGrace)
	}
	return errs
}

// validate checks the ingest section; each error names its key.
func (in Ingest) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if in.Concurrency < 1 || in.Concurrency > 64 {
		bad("ingest.concurrency", "%d is out of range; use 1 to 64 (default 4)", in.Concurrency)
	}
	if t := in.ManifestTable; t != "" && !validTableName(t) {
		bad("ingest.manifest_table", "%q is not a DynamoDB table name: 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.'", t)
	}
	if in.RecordsPerSecond < 0 {
		bad("ingest.records_per_second", "must not be negative (0 derives it from the stream's shards)")
	}
	if in.BytesPerSecond < 0 {
		bad("ingest.bytes_per_second", "must not be negative (0 derives it from the stream's shards)")
	}
	if !(in.CapacityShare > 0 && in.CapacityShare <= 1) {
		bad("ingest.capacity_share", "%g is out of range; use a fraction above 0 and at most 1 (default 0.8)", in.CapacityShare)
	}
	if in.CheckpointLines < 100 || in.CheckpointLines > 1_000_000 {
		bad("ingest.checkpoint_lines", "%d is out of range; use 100 to 1000000 (default 5000)", in.CheckpointLines)
	}
	if in.ClaimDuration < time.Second || in.ClaimDuration > 10*time.Minute {
		bad("ingest.claim_duration", "%s is out of range; use 1s to 10m (default 30s)", in.ClaimDuration)
	}
	return errs
}

// validate checks the explore section; each error names its key. The
// users file is checked when the explorer starts (other commands do not
// need it).
func (e Explore) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if e.Listen == "" {
		bad("explore.listen", "must not be empty; use host:port such as 127.0.0.1:8090")
	}
	isURL := func(u string) bool { return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") }
	switch e.Backend {
	case "opensearch":
		if !isURL(e.OpenSearchURL) {
			bad("explore.opensearch_url", "%q is not an http:// or https:// URL", e.OpenSearchURL)
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"explore.elasticsearch_url", e.ElasticsearchURL != ""}, {"explore.elasticsearch_cloud_id", e.ElasticsearchCloudID != ""}} {
			if k.set {
				bad(k.key, "set, but explore.backend is opensearch; set explore.backend: elasticsearch to read Elasticsearch")
			}
		}
	case "elasticsearch":
		switch {
		case e.ElasticsearchURL == "" && e.ElasticsearchCloudID == "":
			bad("explore.elasticsearch_url", "required with explore.backend elasticsearch (or explore.elasticsearch_cloud_id), e.g. https://127.0.0.1:9200")
		case e.ElasticsearchURL != "" && e.ElasticsearchCloudID != "":
			bad("explore.elasticsearch_url", "set together with explore.elasticsearch_cloud_id; set one of them")
		case e.ElasticsearchURL != "" && !isURL(e.ElasticsearchURL):
			bad("explore.elasticsearch_url", "%q is not an http:// or https:// URL", e.ElasticsearchURL)
		}
		if e.ElasticsearchAPIKey != "" && e.ElasticsearchUsername != "" {
			bad("explore.elasticsearch_api_key", "set together with explore.elasticsearch_username; use one kind of authentication")
		}
		if e.ElasticsearchPassword != "" && e.ElasticsearchUsername == "" {
			bad("explore.elasticsearch_password", "set without explore.elasticsearch_username")
		}
	default:
		bad("explore.backend", "%q is not opensearch or elasticsearch", e.Backend)
	}
	if e.Index == "" || strings.ContainsAny(e.Index, " ,/\\?#\"<>|") {
		bad("explore.index", "%q is not an index pattern such as leasehold-events-*", e.Index)
	}
	if !(e.HighlightMinChange > 0 && e.HighlightMinChange <= 10000) {
		bad("explore.highlight_min_change", "%g is out of range; use a percentage above 0 (default 50)", e.HighlightMinChange)
	}
	if e.HighlightMinCount < 1 {
		bad("explore.highlight_min_count", "%d must be at least 1 (default 20)", e.HighlightMinCount)
	}
	switch e.Rollups {
	case "build", "read", "off":
	default:
		bad("explore.rollups", "%q is not build, read or off", e.Rollups)
	}
	if e.RollupSettle < 0 {
		bad("explore.rollup_settle", "%s must not be negative", e.RollupSettle)
	}
	if e.RollupCheck < 0 || e.RollupCheck > time.Hour {
		bad("explore.rollup_check", "%s is out of range; use 0 to 1h (default 5s)", e.RollupCheck)
	}
	if t := e.LeaseTable; t != "" && !validTableName(t) {
		bad("explore.lease_table", "%q is not a DynamoDB table name", t)
	}
	return errs
}

// validTableName reports whether name is a valid DynamoDB table name.
func validTableName(name string) bool {
	if len(name) < 3 || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
