// Package opensearch is the OpenSearch sink: it indexes each message's
// event through the bulk API (opensearch-go v4), one index per UTC day of
// the event time, with the event id as the document _id so that a replay
// overwrites instead of duplicating.
//
// A shard sink buffers encoded documents across Write calls and sends a
// bulk request when the buffer reaches flush_bytes or its oldest document
// is flush_interval old, from one goroutine per shard, one request at a
// time, so that durability advances in order. Each item of a 200 response
// is read and classified by searchbulk.Classify: items rejected with 429
// or 5xx are resent alone with backoff; items the cluster refuses until an
// operator acts (shard limit, missing or closed index, no write index, a
// read-only block: ErrCannotWrite) are resent the same way and reported
// in State, never dead-lettered; only a bad document (a mapping conflict)
// is dead-lettered with the cluster's reason. A whole request that fails
// (connection refused, 429, 5xx, timeout) is retried with backoff until
// the shard stops: the shard lags and Write blocks (backpressure), and
// nothing is dropped.
//
// Memory is bounded per shard (max_buffer_bytes) and per worker: all
// shard sinks of one Sink share max_buffered_bytes (a
// processors.MemoryBudget in the shared searchbulk.Engine, as the S3
// sink's shards share theirs). A shard that finds the budget spent sends
// what it holds and waits for room; one holding nothing waits and asks
// the others to send theirs. See docs/EVENTS.md, "OpenSearch sink".
package opensearch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	osclient "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// TypeName is the sink type in the pipeline config.
const TypeName = "opensearch"

// Register adds the sink type "opensearch" to r. Its options are Config's
// YAML fields, decoded strictly; construction (see New) fails on an
// invalid option, naming it, or on a cluster that permanently rejects the
// index template. It uses deps.Logger (optional: without it the sink logs
// nothing) and deps.AWS (optional: aws_sigv4 signs with its credentials;
// without it the sink loads the SDK's default chain).
func Register(r *processors.Registry) {
	r.RegisterSink(TypeName, func(ctx context.Context, opts processors.Options, deps processors.Deps) (processors.Sink, error) {
		var c Config
		if err := opts.Decode(&c); err != nil {
			return nil, err
		}
		if deps.AWS != nil {
			c.AWSConfig = deps.AWS
		}
		c.Name = opts.Name()
		return New(ctx, c, deps.Logger)
	})
}

// Sink is the OpenSearch sink of a worker: one HTTP client and template
// state shared by the shard sinks it opens. Safe for concurrent use.
type Sink struct {
	cfg      Config // with defaults; read-only after New
	pattern  searchbulk.IndexPattern
	client   *osclient.Client
	api      *opensearchapi.Client
	template []byte // PUT _index_template body
	log      *zap.Logger
	engine   *searchbulk.Engine // buffering, bulk requests, retries: shared with the elasticsearch sink

	retention *searchbulk.Setup // the ISM policy or the core-API fallback

	templateMu sync.Mutex  // serialises installing the template
	templateOK atomic.Bool // the template is installed
}

// New validates cfg, builds the client and tries once to install the
// index template. It blocks for at most one request (request_timeout). A
// cluster that is unreachable or overloaded now is not an error: the
// template is installed before the first bulk request instead. An invalid
// option, an unreadable tls.ca_file, a failing AWS credential chain, a
// certificate that does not verify, a 401 or 403, or another permanent
// rejection of the template (for example a template of equal priority
// with overlapping patterns) is. log may be nil.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	pattern, err := searchbulk.ParseIndexPattern(cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("%w: index: %w", ErrConfig, err)
	}
	s := &Sink{cfg: cfg, pattern: pattern, log: log.With(zap.String("sink", cfg.Name))}
	if s.template, err = templateBody(cfg, pattern); err != nil {
		return nil, err
	}
	osCfg, err := clientConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if s.client, err = osclient.NewClient(osCfg); err != nil {
		return nil, fmt.Errorf("opensearch: new client: %w", err)
	}
	s.api = opensearchapi.NewFromClient(s.client)
	s.retention = &searchbulk.Setup{Retention: cfg.Retention, Pattern: pattern, Cluster: lifecycle{s}, Log: s.log}
	s.engine = searchbulk.NewEngine(searchbulk.Options{
		Product: "opensearch", Name: cfg.Name,
		FlushBytes: int64(cfg.FlushBytes), MaxBufferBytes: int64(cfg.MaxBufferBytes), MaxBufferedBytes: int64(cfg.MaxBufferedBytes), FlushInterval: cfg.FlushInterval,
		MaxRetries: cfg.MaxRetries, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, RequestTimeout: cfg.RequestTimeout,
	}, pattern, cluster{s}, s.log)
	if *cfg.Template {
		switch err := s.ensureTemplate(ctx); {
		case err == nil:
			s.log.Info("index template installed", zap.String("template", cfg.TemplateName), zap.String("pattern", pattern.Wildcard()))
		case processors.IsPermanent(err) || isAuthError(err):
			_ = s.client.Close()
			return nil, err
		default:
			s.log.Warn("index template not installed yet; retrying before the first bulk request", zap.Error(err))
		}
	}
	return s, nil
}

// isAuthError reports a 401 or 403 answer. At start-up it means wrong
// credentials or permissions, so New fails instead of retrying (later it
// is retried: see searchbulk.Classify).
func isAuthError(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden)
}

// clientConfig builds the opensearch-go configuration: our own retries
// (the client's are disabled, so that one place decides), TLS, basic auth
// or SigV4.
func clientConfig(ctx context.Context, c Config) (osclient.Config, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // one bulk in flight per shard, many shards per worker
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} // #nosec G402 -- opt-in for local clusters
	if c.TLS.CAFile != "" {
		pool, err := searchbulk.RootCAs(c.TLS.CAFile)
		if err != nil {
			return osclient.Config{}, fmt.Errorf("%w: tls.ca_file: %w", ErrConfig, err)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	oc := osclient.Config{
		Addresses:    c.urls(),
		Username:     c.Username,
		Password:     c.Password,
		Transport:    tr,
		DisableRetry: true,
	}
	if v := c.AWSSigV4; v != nil {
		awsCfg := c.AWSConfig
		if awsCfg == nil {
			var opts []func(*awsconfig.LoadOptions) error
			if v.Region != "" {
				opts = append(opts, awsconfig.WithRegion(v.Region))
			}
			loaded, err := awsconf.Load(ctx, opts...)
			if err != nil {
				return osclient.Config{}, fmt.Errorf("opensearch: aws_sigv4: %w", err)
			}
			awsCfg = &loaded
		} else if v.Region != "" {
			cp := awsCfg.Copy()
			cp.Region = v.Region
			awsCfg = &cp
		}
		sg, err := awsv2.NewSignerWithService(*awsCfg, v.Service)
		if err != nil {
			return osclient.Config{}, fmt.Errorf("opensearch: aws_sigv4: %w", err)
		}
		oc.Signer = sg
	}
	return oc, nil
}

// Name returns the sink's name (Config.Name, default "opensearch").
func (s *Sink) Name() string { return s.cfg.Name }

// Open starts a shard sink and its flushing goroutine, which runs until
// the shard sink's Close or until ctx ends (then Write and Flush fail with
// ErrStopped). dl receives the documents the cluster rejects permanently;
// Open fails only without one. It does not block.
func (s *Sink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	return s.engine.Open(ctx, shard, dl)
}

// PruneExpired deletes, now, the event-time indices older than
// retention.days through the core API (the fallback that otherwise runs
// every retention.interval when the cluster has no ISM) and returns their
// names. Safe to call from every worker at once. It blocks for the
// requests.
func (s *Sink) PruneExpired(ctx context.Context) ([]string, error) {
	return s.retention.PruneExpired(ctx)
}

// Close stops the retention fallback and releases the HTTP client's idle
// connections. Call it after every shard sink is closed. It blocks for at
// most one retention request.
func (s *Sink) Close(context.Context) error {
	s.retention.Close()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("opensearch: close client: %w", err)
	}
	return nil
}

// Stats is a snapshot of a Sink's counters, summed over its shards since
// New (the bulk engine's, searchbulk.Stats).
type Stats = searchbulk.Stats

// Stats returns the counters. It does not block; safe for concurrent use.
func (s *Sink) Stats() Stats { return s.engine.Stats() }

// State reports, for metrics and readiness, the shards whose writes fail
// and are being retried (and which of them the cluster refuses until an
// operator acts: ErrCannotWrite), and the bytes buffered over all shards.
// It does not block; safe for concurrent use.
func (s *Sink) State() processors.SinkState { return s.engine.State() }
