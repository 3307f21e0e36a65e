package searchbulk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
)

// Retention modes.
const (
	// RetentionAuto uses the cluster's lifecycle management (ILM on
	// Elasticsearch, ISM on OpenSearch) when the cluster offers it, and
	// the core-API fallback (Pruner) when it does not.
	RetentionAuto = "auto"
	// RetentionLifecycle requires the cluster's lifecycle management: a
	// sink fails to start without it.
	RetentionLifecycle = "lifecycle"
	// RetentionDelete uses the core-API fallback only.
	RetentionDelete = "delete"
)

// DefaultRetentionInterval is how often each worker's fallback looks for
// indices to delete.
const DefaultRetentionInterval = time.Hour

// Retention is a search sink's retention option (`retention:`): how long
// event-time indices are kept, and how they are deleted.
type Retention struct {
	// Days keeps an index until its whole day (or hour) is more than Days
	// days old, by event time. 0, the default, keeps indices forever.
	Days int `yaml:"days"`
	// Mode is auto (the default), lifecycle or delete; see RetentionAuto.
	Mode string `yaml:"mode"`
	// Policy names the lifecycle policy the sink installs. Default: the
	// template's name.
	Policy string `yaml:"policy"`
	// Interval is how often each worker's core-API fallback lists the
	// indices and deletes the expired ones. Default 1h; at least 1m.
	Interval time.Duration `yaml:"interval"`
}

// WithDefaults returns r with its defaults; templateName names the policy
// unless Policy is set.
func (r Retention) WithDefaults(templateName string) Retention {
	if r.Mode == "" {
		r.Mode = RetentionAuto
	}
	if r.Policy == "" {
		r.Policy = templateName
	}
	if r.Interval == 0 {
		r.Interval = DefaultRetentionInterval
	}
	return r
}

// Validate reports every bad setting of r (after WithDefaults), each
// naming its key under retention. template tells whether the sink
// installs its index template, through which a lifecycle policy is
// attached.
func (r Retention) Validate(template bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Days < 0 {
		bad("retention.days: %d is negative; 0 keeps indices forever", r.Days)
	}
	switch r.Mode {
	case RetentionAuto, RetentionDelete:
	case RetentionLifecycle:
		if !template && r.Days > 0 {
			bad("retention.mode: lifecycle attaches the policy through the index template; it needs template: true")
		}
	default:
		bad("retention.mode: %q; use auto, lifecycle or delete", r.Mode)
	}
	if r.Days > 0 && r.Policy != "" && !ValidIndexName(r.Policy) {
		bad("retention.policy: %q is not a valid name", r.Policy)
	}
	if r.Interval < time.Minute {
		bad("retention.interval: %s is too short; use at least 1m (default 1h)", r.Interval)
	}
	return errs
}

// Indices is the core index API the fallback needs; both sinks implement
// it on their clients.
type Indices interface {
	// ListIndices returns the names of the indices matching wildcard,
	// open or closed.
	ListIndices(ctx context.Context, wildcard string) ([]string, error)
	// DeleteIndex deletes one index by its exact name. An index that does
	// not exist (another worker deleted it first) is not an error.
	DeleteIndex(ctx context.Context, name string) error
}

// Lifecycle is what a sink needs of its cluster to install retention and
// its index template. Both sinks implement it.
type Lifecycle interface {
	Indices
	// LifecycleAPI returns the name of the cluster's lifecycle management
	// ("ILM", "ISM") and whether the cluster offers it, asking the API
	// itself. An error means the cluster did not answer.
	LifecycleAPI(ctx context.Context) (name string, ok bool, err error)
	// PutPolicy installs (or updates) the policy name that deletes the
	// indices matching p days after their day, by event time where the
	// cluster can tell it.
	PutPolicy(ctx context.Context, name string, days int, p IndexPattern) error
	// PolicySettings returns the index settings that attach the policy
	// through the index template (nil when the policy attaches itself, as
	// ISM's ism_template does).
	PolicySettings(name string, p IndexPattern) map[string]any
	// PutTemplate installs (or overwrites) the index template.
	PutTemplate(ctx context.Context, name string, body []byte) error
}

// Setup installs, once, what a sink needs before its first bulk request:
// the lifecycle policy when retention uses one, then the index template
// (attaching the policy), and starts the core-API fallback when retention
// needs it. Safe for concurrent use.
type Setup struct {
	Retention    Retention // with defaults
	Pattern      IndexPattern
	Template     *Template // nil: no template
	TemplateName string
	Cluster      Lifecycle
	Log          *zap.Logger

	mu     sync.Mutex // serialises Ready
	done   bool       // guarded by mu
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pruner *Pruner
}

// Ready installs what is missing and returns nil once everything is in
// place; later calls return nil at once. It blocks for a few requests,
// and while another goroutine runs it. Errors are the cluster's, as
// RequestFailure classified them, or, with retention.mode lifecycle on a
// cluster without lifecycle management, a permanent error.
func (s *Setup) Ready(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	log := s.Log
	if log == nil {
		log = zap.NewNop()
	}
	var prune bool
	tmpl := s.Template
	if r := s.Retention; r.Days > 0 {
		lifecycle := false
		if r.Mode != RetentionDelete {
			name, ok, err := s.Cluster.LifecycleAPI(ctx)
			if err != nil {
				return err
			}
			attach := s.Cluster.PolicySettings(r.Policy, s.Pattern)
			switch {
			case ok && attach != nil && s.Template == nil:
				log.Warn("retention: the cluster offers "+name+" but the index template, which attaches the policy, is off; deleting by age through the core API instead", zap.Int("days", r.Days))
			case ok:
				if err := s.Cluster.PutPolicy(ctx, r.Policy, r.Days, s.Pattern); err != nil {
					return err
				}
				lifecycle = true
				if s.Template != nil {
					t := *s.Template
					t.IndexSettings = mergeSettings(t.IndexSettings, attach)
					tmpl = &t
				}
				log.Info("retention: lifecycle policy installed", zap.String("api", name), zap.String("policy", r.Policy), zap.Int("days", r.Days))
			case r.Mode == RetentionLifecycle:
				return permanentf("retention.mode is lifecycle, but the cluster has no %s (the API answered that it does not exist); use mode auto or delete", name)
			default:
				log.Info("retention: the cluster has no "+name+"; deleting indices older than the retention by name through the core API", zap.Int("days", r.Days), zap.Duration("interval", r.Interval))
			}
		}
		prune = !lifecycle
	}
	if tmpl != nil {
		body, err := tmpl.Body()
		if err != nil {
			return err
		}
		if err := s.Cluster.PutTemplate(ctx, s.TemplateName, body); err != nil {
			return err
		}
		log.Info("index template installed", zap.String("template", s.TemplateName), zap.String("pattern", tmpl.Pattern.Wildcard()))
	}
	if prune {
		s.pruner = s.newPruner(log)
		var pctx context.Context
		pctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.pruner.Run(pctx)
		}()
	}
	s.done = true
	return nil
}

func (s *Setup) newPruner(log *zap.Logger) *Pruner {
	return &Pruner{Days: s.Retention.Days, Interval: s.Retention.Interval, Pattern: s.Pattern, Indices: s.Cluster, Log: log}
}

// PruneExpired runs the core-API fallback once, now, whatever the mode,
// and returns the indices it deleted (see Pruner.Prune). With
// retention.days 0 it deletes nothing. It blocks for the requests.
func (s *Setup) PruneExpired(ctx context.Context) ([]string, error) {
	if s.Retention.Days <= 0 {
		return nil, nil
	}
	return s.newPruner(s.Log).Prune(ctx)
}

// Close stops the fallback's goroutine and waits for it. It blocks for at
// most one in-flight request.
func (s *Setup) Close() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

func mergeSettings(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Pruner is the core-API retention fallback: it deletes the event-time
// indices whose whole day (or hour) is more than Days days old, by exact
// name, reading the date from the name. Every worker runs one per sink;
// running them all at once is safe: a delete is idempotent (a missing
// index is fine), only whole expired periods are deleted (never the
// current one, whatever the clocks say within a day), and each looks at
// most once per Interval.
type Pruner struct {
	Days     int
	Interval time.Duration
	Pattern  IndexPattern
	Indices  Indices
	Log      *zap.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Prune deletes the expired indices once and returns their names (an
// index another worker deleted meanwhile is among them: its delete
// answered 404, which counts as done). It blocks for one list and one
// delete per expired index. Deletes that fail are reported together; the
// others still happen.
func (p *Pruner) Prune(ctx context.Context) ([]string, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	names, err := p.Indices.ListIndices(ctx, p.Pattern.Wildcard())
	if err != nil {
		return nil, err
	}
	period := 24 * time.Hour
	if p.Pattern.hourly {
		period = time.Hour
	}
	cutoff := now().UTC().Add(-time.Duration(p.Days) * 24 * time.Hour)
	var deleted []string
	var errs []error
	for _, name := range names {
		t, ok := p.Pattern.Time(name)
		if !ok || t.Add(period).After(cutoff) {
			continue
		}
		if err := p.Indices.DeleteIndex(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}

// Run calls Prune soon after it starts (within a minute, jittered so that
// workers started together do not ask together) and then every Interval
// (±10%), until ctx ends. Failures are logged and tried again at the next
// round.
func (p *Pruner) Run(ctx context.Context) {
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	wait := backoff.Policy{Min: min(time.Minute, p.Interval), Jitter: backoff.Full}.Delay(1)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		deleted, err := p.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("retention: deleting expired indices failed; trying again at the next round", zap.Strings("deleted", deleted), zap.Error(err))
		case len(deleted) > 0:
			log.Info("retention: expired indices deleted", zap.Strings("indices", deleted), zap.Int("days", p.Days))
		default:
			log.Debug("retention: nothing expired")
		}
		wait = backoff.Policy{Min: p.Interval, Jitter: backoff.Tenth}.Delay(1)
	}
}

// permanentf is a permanent error (a configuration the cluster cannot
// serve), so that a sink's constructor fails on it.
func permanentf(format string, args ...any) error {
	return processorsPermanent(fmt.Errorf("search sink: "+format, args...))
}
