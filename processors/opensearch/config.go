package opensearch

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/leasehold/leasehold/processors/searchbulk"
)

// Defaults and limits of Config: those of both search sinks, documented
// in searchbulk.
const (
	DefaultIndex            = searchbulk.DefaultIndex
	DefaultFlushBytes       = searchbulk.DefaultFlushBytes
	MaxFlushBytes           = searchbulk.MaxFlushBytes
	DefaultFlushInterval    = searchbulk.DefaultFlushInterval
	DefaultTemplatePriority = searchbulk.DefaultTemplatePriority
	DefaultBackoffMin       = searchbulk.DefaultBackoffMin
	DefaultBackoffMax       = searchbulk.DefaultBackoffMax
	DefaultRequestTimeout   = searchbulk.DefaultRequestTimeout
	DefaultMaxBufferedBytes = searchbulk.DefaultMaxBufferedBytes
)

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("opensearch: invalid config")

// Config is the sink's configuration: the YAML options of a sink of type
// `opensearch`, or a value built in Go for New. Zero fields take the
// defaults documented on each; Validate reports every bad setting.
type Config struct {
	// URL is the cluster's base URL, e.g. https://search-x.eu-west-1.es.amazonaws.com.
	// Exactly one of URL and URLs is required.
	URL string `yaml:"url"`
	// URLs lists several nodes of one cluster; requests are spread over them.
	URLs []string `yaml:"urls"`
	// Index is the index name pattern. Text in braces is a date format of
	// the event's time in UTC (yyyy, MM, dd, HH and the separators . - _),
	// so a log line that arrives a day late lands in its own day's index.
	// Default DefaultIndex.
	Index string `yaml:"index"`
	// FlushBytes caps a bulk request body. A buffer that reaches it is sent
	// at once; a bigger buffer is split; a single document (with its action
	// line) larger than it is dead-lettered, never sent. Default 5 MiB;
	// must be below MaxFlushBytes (10 MiB). Accepts an integer or a size
	// such as "5MiB".
	FlushBytes ByteSize `yaml:"flush_bytes"`
	// FlushInterval is the longest a document waits in the buffer: a slow
	// shard still gets bulk requests of reasonable size, since a shard sink
	// buffers across GetRecords calls. Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxBufferBytes bounds the bytes a shard holds that are not yet
	// durable (buffered and in flight). Write blocks while it is exceeded,
	// so a slow or down cluster stops the shard from reading
	// (backpressure). Default twice FlushBytes; at least FlushBytes.
	MaxBufferBytes ByteSize `yaml:"max_buffer_bytes"`
	// MaxBufferedBytes bounds the bytes that all shards of this sink hold
	// in one worker together, not yet durable (default 64 MiB): a
	// per-shard bound alone multiplies with the shards a worker holds (32
	// shards × max_buffer_bytes). When it is spent a shard sends what it
	// holds at once and waits for room; a shard holding nothing waits and
	// asks the others to send theirs, so bulk requests get smaller than
	// flush_bytes under pressure. The shard reads nothing meanwhile.
	// Accepts an integer or a size such as "64MiB".
	MaxBufferedBytes ByteSize `yaml:"max_buffered_bytes"`
	// Username and Password enable HTTP basic authentication. The password
	// is never logged. In the config file it may come from the environment
	// (password: ${OS_PASSWORD}) or a file (password_file: path): the
	// config loader resolves both before this struct is decoded, and
	// `config show` redacts it (internal/config.IsSecretKey).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS configures server verification for https URLs.
	TLS TLSConfig `yaml:"tls"`
	// AWSSigV4 signs requests for Amazon OpenSearch Service (service "es")
	// or OpenSearch Serverless ("aoss") with credentials from the AWS SDK's
	// default chain. Not combinable with Username.
	AWSSigV4 *SigV4Config `yaml:"aws_sigv4"`
	// Template installs an index template with explicit mappings for every
	// event field before the first bulk request. Default true.
	Template *bool `yaml:"template"`
	// TemplateName names the template. Default: Index up to its first
	// date pattern, without trailing separators ("leasehold-events").
	TemplateName string `yaml:"template_name"`
	// TemplatePriority is the template's priority; OpenSearch rejects two
	// templates with overlapping patterns and equal priority. Default 100.
	TemplatePriority *int `yaml:"template_priority"`
	// Shards and Replicas set index.number_of_shards and
	// index.number_of_replicas in the template. Default: the cluster's.
	Shards   *int `yaml:"shards"`
	Replicas *int `yaml:"replicas"`
	// Retention deletes event-time indices after a number of days: with
	// ISM where the cluster has it, else with the core API (see
	// searchbulk.Retention and docs/OPERATIONS.md, "Retention").
	Retention searchbulk.Retention `yaml:"retention"`
	// MaxRetries bounds the attempts of one bulk request (whole request or
	// its retryable items). 0, the default, retries until the shard's
	// context ends: a retryable failure (429, 5xx, timeouts, connection
	// errors) is never skipped and the shard lags instead. With a bound,
	// exhausting it fails the shard sink (ErrRetriesExhausted): the shard
	// stops without a checkpoint and is replayed; nothing is dead-lettered
	// for a retryable failure.
	MaxRetries int `yaml:"max_retries"`
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (with jitter). Defaults 100ms and 10s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// RequestTimeout bounds one HTTP attempt; a timeout is retried.
	// Default 1m.
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// Name is the sink's name in checkpoints, logs and metrics. Default
	// "opensearch". Set from Go only: a pipeline stage's `name:` key is
	// consumed by the pipeline config and not passed to the sink.
	Name string `yaml:"-"`
	// AWSConfig, when set from Go, is used for SigV4 instead of loading
	// the default chain.
	AWSConfig *aws.Config `yaml:"-"`
}

// TLSConfig configures TLS for https URLs.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates to trust in addition to the
	// system pool. Default: the system pool only.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify disables certificate verification (for a local
	// cluster with a self-signed certificate only). Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SigV4Config configures AWS SigV4 request signing.
type SigV4Config struct {
	// Region is the cluster's region. Default: the SDK chain's (AWS_REGION).
	Region string `yaml:"region"`
	// Service is "es" (Amazon OpenSearch Service, the default) or "aoss"
	// (OpenSearch Serverless).
	Service string `yaml:"service"`
}

// ByteSize is a byte count that decodes from YAML as an integer or a
// string with a unit (searchbulk.ByteSize: "5MiB", "512KB").
type ByteSize = searchbulk.ByteSize

// ParseByteSize parses "5242880", "5MiB", "512 KB" and the like.
func ParseByteSize(s string) (ByteSize, error) { return searchbulk.ParseByteSize(s) }

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Index == "" {
		c.Index = DefaultIndex
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = DefaultFlushBytes
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxBufferBytes == 0 {
		c.MaxBufferBytes = 2 * c.FlushBytes
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.Template == nil {
		on := true
		c.Template = &on
	}
	if c.TemplateName == "" {
		if p, err := searchbulk.ParseIndexPattern(c.Index); err == nil {
			c.TemplateName = p.TemplateName()
		}
	}
	if c.TemplatePriority == nil {
		p := DefaultTemplatePriority
		c.TemplatePriority = &p
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.AWSSigV4 != nil && c.AWSSigV4.Service == "" {
		s := *c.AWSSigV4
		s.Service = "es"
		c.AWSSigV4 = &s
	}
	if c.Name == "" {
		c.Name = "opensearch"
	}
	c.Retention = c.Retention.WithDefaults(c.TemplateName)
	return c
}

// Validate reports every bad setting of c after defaults are applied, each
// naming its option and wrapping ErrConfig. It does not touch the network
// or the file system (New reads tls.ca_file).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	switch {
	case c.URL == "" && len(c.URLs) == 0:
		bad("url: required (e.g. http://127.0.0.1:9200)")
	case c.URL != "" && len(c.URLs) > 0:
		bad("url and urls: set one, not both")
	}
	for i, raw := range c.urls() {
		name := "url"
		if c.URL == "" {
			name = fmt.Sprintf("urls[%d]", i)
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad("%s: %q does not parse: %v", name, raw, err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("%s: %q: scheme must be http or https", name, raw)
		case u.Host == "":
			bad("%s: %q has no host", name, raw)
		case u.User != nil:
			bad("%s: put credentials in username and password, not in the URL", name)
		}
	}
	if _, err := searchbulk.ParseIndexPattern(c.Index); err != nil {
		bad("index: %v", err)
	}
	switch {
	case c.FlushBytes < 0:
		bad("flush_bytes: %d is negative", c.FlushBytes)
	case c.FlushBytes >= MaxFlushBytes:
		bad("flush_bytes: %d is not below the 10 MiB cap (%d): Amazon OpenSearch Service rejects larger requests on small instances", c.FlushBytes, MaxFlushBytes)
	case c.FlushBytes < 1024:
		bad("flush_bytes: %d is below 1 KiB; most documents would not fit", c.FlushBytes)
	}
	if c.MaxBufferBytes < c.FlushBytes {
		bad("max_buffer_bytes: %d is below flush_bytes (%d)", c.MaxBufferBytes, c.FlushBytes)
	}
	if c.MaxBufferedBytes < 0 {
		bad("max_buffered_bytes: %d is negative", c.MaxBufferedBytes)
	}
	if c.FlushInterval < 0 {
		bad("flush_interval: %s is negative", c.FlushInterval)
	}
	if c.Username == "" && c.Password != "" {
		bad("password: set without username")
	}
	if c.AWSSigV4 != nil {
		if c.Username != "" {
			bad("aws_sigv4 and username: use one kind of authentication")
		}
		if s := c.AWSSigV4.Service; s != "es" && s != "aoss" {
			bad("aws_sigv4.service: %q; use es (Amazon OpenSearch Service) or aoss (OpenSearch Serverless)", s)
		}
	}
	if *c.Template && c.TemplateName == "" {
		bad("template_name: required when index has no literal prefix")
	}
	if *c.Template && !searchbulk.ValidIndexName(c.TemplateName) {
		bad("template_name: %q is not a valid name (lowercase, no spaces or \\/*?\"<>|,#)", c.TemplateName)
	}
	if n := c.Shards; n != nil && *n < 1 {
		bad("shards: %d; want at least 1", *n)
	}
	if n := c.Replicas; n != nil && *n < 0 {
		bad("replicas: %d is negative", *n)
	}
	for _, err := range c.Retention.Validate(true) { // ISM attaches itself, template or not
		bad("%v", err)
	}
	if c.MaxRetries < 0 {
		bad("max_retries: %d is negative; 0 means retry until the shard stops", c.MaxRetries)
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		bad("backoff_min, backoff_max: want 0 <= backoff_min <= backoff_max, got %s and %s", c.BackoffMin, c.BackoffMax)
	}
	if c.RequestTimeout < 0 {
		bad("request_timeout: %s is negative", c.RequestTimeout)
	}
	return errors.Join(errs...)
}

func (c Config) urls() []string {
	if c.URL != "" {
		return []string{c.URL}
	}
	return c.URLs
}
