// Package elasticsearch is the Elasticsearch 8 sink: it indexes each
// message's event through the bulk API of the official client
// (github.com/elastic/go-elasticsearch/v8), one index per UTC day of the
// event time, with the event id as the document _id so that a replay
// overwrites instead of duplicating.
//
// It has the OpenSearch sink's contract and runs on the same engine
// (processors/searchbulk): per-shard buffering across Write calls, bulk
// requests of at most flush_bytes in order, per-item results (429 and 5xx
// items resent alone with backoff; "cannot write now" — shard limit,
// read-only block, closed or missing index — retried and reported, never
// dead-lettered; bad documents dead-lettered with the cluster's reason),
// and the same document encoding, index names and mappings. What differs
// is the client, authentication (API key, basic, Elastic Cloud ID), and
// retention through ILM. See docs/EVENTS.md, "Elasticsearch sink".
package elasticsearch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// TypeName is the sink type in the pipeline config.
const TypeName = "elasticsearch"

// Register adds the sink type "elasticsearch" to r. Its options are
// Config's YAML fields, decoded strictly; construction (see New) fails on
// an invalid option, naming it, or on a cluster that permanently rejects
// the setup. It uses deps.Logger (optional: without it the sink logs nothing).
func Register(r *processors.Registry) {
	r.RegisterSink(TypeName, func(ctx context.Context, opts processors.Options, deps processors.Deps) (processors.Sink, error) {
		var c Config
		if err := opts.Decode(&c); err != nil {
			return nil, err
		}
		c.Name = opts.Name()
		return New(ctx, c, deps.Logger)
	})
}

// Sink is the Elasticsearch sink of a worker: one client, the template
// and retention setup, and the bulk engine shared by the shard sinks it
// opens. Safe for concurrent use.
type Sink struct {
	cfg     Config // with defaults; read-only after New
	pattern searchbulk.IndexPattern
	client  *es.Client
	engine  *searchbulk.Engine
	setup   *searchbulk.Setup
	log     *zap.Logger
}

// New validates cfg, builds the client and tries once to install the
// lifecycle policy and index template. It blocks for a few requests (each
// bounded by request_timeout). A cluster that is unreachable or
// overloaded now is not an error: the setup is done before the first bulk
// request instead. An invalid option, an unreadable tls.ca_file, a
// certificate that does not verify, a server that is not Elasticsearch
// (the client refuses OpenSearch), a 401 or 403, or another permanent
// rejection of the setup is. log may be nil.
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
	esCfg, err := clientConfig(cfg)
	if err != nil {
		return nil, err
	}
	if s.client, err = es.NewClient(esCfg); err != nil {
		return nil, fmt.Errorf("elasticsearch: new client: %w", err)
	}
	c := &cluster{client: s.client, timeout: cfg.RequestTimeout}
	s.setup = &searchbulk.Setup{Retention: cfg.Retention, Pattern: pattern, TemplateName: cfg.TemplateName, Cluster: c, Log: s.log}
	if *cfg.Template {
		s.setup.Template = &searchbulk.Template{Flavor: searchbulk.Elasticsearch, Pattern: pattern,
			Priority: *cfg.TemplatePriority, Shards: cfg.Shards, Replicas: cfg.Replicas}
	}
	c.ready = s.setup.Ready
	s.engine = searchbulk.NewEngine(searchbulk.Options{
		Product: "elasticsearch", Name: cfg.Name,
		FlushBytes: int64(cfg.FlushBytes), MaxBufferBytes: int64(cfg.MaxBufferBytes), MaxBufferedBytes: int64(cfg.MaxBufferedBytes), FlushInterval: cfg.FlushInterval,
		MaxRetries: cfg.MaxRetries, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, RequestTimeout: cfg.RequestTimeout,
	}, pattern, c, s.log)

	switch err := s.setup.Ready(ctx); {
	case err == nil:
	case processors.IsPermanent(err) || searchbulk.IsAuthError(err) || isNotElasticsearch(err):
		s.setup.Close()
		_ = s.client.Close(context.WithoutCancel(ctx))
		return nil, err
	default:
		s.log.Warn("index template and retention not set up yet; retrying before the first bulk request", zap.Error(err))
	}
	return s, nil
}

// isNotElasticsearch reports the client's refusal of a server that does
// not say it is Elasticsearch (OpenSearch, a proxy's own page).
func isNotElasticsearch(err error) bool {
	return errors.Is(err, errNotElasticsearch)
}

// clientConfig builds the go-elasticsearch configuration: our own retries
// (the client's are disabled, so that one place decides), TLS, API key or
// basic auth, Cloud ID.
func clientConfig(c Config) (es.Config, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // one bulk in flight per shard, many shards per worker
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} // #nosec G402 -- opt-in for local clusters
	if c.TLS.CAFile != "" {
		pool, err := searchbulk.RootCAs(c.TLS.CAFile)
		if err != nil {
			return es.Config{}, fmt.Errorf("%w: tls.ca_file: %w", ErrConfig, err)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	return es.Config{
		Addresses:    c.urls(),
		CloudID:      c.CloudID,
		APIKey:       string(c.APIKey),
		Username:     c.Username,
		Password:     string(c.Password),
		Transport:    tr,
		DisableRetry: true,
	}, nil
}

// Name returns the sink's name (Config.Name, default "elasticsearch").
func (s *Sink) Name() string { return s.cfg.Name }

// Open starts a shard sink (see searchbulk.Engine.Open). It does not
// block.
func (s *Sink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	return s.engine.Open(ctx, shard, dl)
}

// Close stops the retention fallback and releases the client's idle
// connections. Call it after every shard sink is closed. It blocks for at
// most one retention request.
func (s *Sink) Close(ctx context.Context) error {
	s.setup.Close()
	if err := s.client.Close(ctx); err != nil {
		return fmt.Errorf("elasticsearch: close client: %w", err)
	}
	return nil
}

// PruneExpired deletes, now, the event-time indices older than
// retention.days through the core API (the fallback that otherwise runs
// every retention.interval when the cluster has no ILM) and returns their
// names. Safe to call from every worker at once. It blocks for the
// requests.
func (s *Sink) PruneExpired(ctx context.Context) ([]string, error) { return s.setup.PruneExpired(ctx) }

// State reports, for metrics and readiness, the shards whose writes fail
// and are being retried (and which of them the cluster refuses until an
// operator acts), and the bytes buffered over all shards. It does not
// block; safe for concurrent use.
func (s *Sink) State() processors.SinkState { return s.engine.State() }

// Stats returns the bulk engine's counters. It does not block; safe for
// concurrent use.
func (s *Sink) Stats() searchbulk.Stats { return s.engine.Stats() }
