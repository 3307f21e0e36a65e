// Package assetlookup is the asset_lookup processor: it joins each event's
// asset_id with the platform's asset catalog and fills the asset's title,
// type and collection (event.Asset) and its owner (Event.Tenant), so that
// analytics speak in names rather than ids.
//
// The catalog comes from an NDJSON or CSV file, a DynamoDB table, or both
// (the table wins where they disagree). It is held in memory and replaced
// whole on refresh: the file when its size or modification time changed,
// the table by a new Scan, every Options.Refresh. A refresh that fails
// keeps the previous catalog (and is logged); a catalog that cannot be
// loaded at start-up is a configuration error. Lookups never do I/O.
//
// Unknown assets (an asset_id the catalog does not have) are kept without
// asset fields by default; Options.Unknown can drop them or dead-letter
// them instead. Events without an asset_id (pages, scripts) pass untouched.
package assetlookup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// Type is the processor type name used in the pipeline config.
const Type = "asset_lookup"

// DefaultRefresh is how often the catalog is reloaded when
// Options.Refresh is 0.
const DefaultRefresh = 5 * time.Minute

// What to do with an event whose asset the catalog does not know.
const (
	UnknownKeep       = "keep"        // index it without asset fields (default)
	UnknownDrop       = "drop"        // filter it out
	UnknownDeadLetter = "dead_letter" // dead-letter it with the reason
)

// Who owns an asset when the event and the catalog disagree.
const (
	// TenantCatalog sets Tenant to the catalog's customer whenever the
	// catalog names one (default): the catalog is the source of truth for
	// ownership, and per-customer views filter on it.
	TenantCatalog = "catalog"
	// TenantKeep fills Tenant from the catalog only when the event has none.
	TenantKeep = "keep"
)

// ErrUnknownAsset is the reason unknown assets are dead-lettered with.
var ErrUnknownAsset = errors.New("assetlookup: asset not in the catalog")

// Options configures the asset_lookup processor. Zero values mean the
// default.
type Options struct {
	// File is an NDJSON or CSV (by the .csv extension) catalog file.
	// Default none.
	File string `yaml:"file"`
	// Table is a DynamoDB table holding the catalog. Default none; at
	// least one of File and Table is required.
	Table string `yaml:"table"`
	// Refresh is how often the catalog is reloaded. Default 5m; at least 1s.
	Refresh time.Duration `yaml:"refresh"`
	// Unknown is keep (default), drop or dead_letter.
	Unknown string `yaml:"unknown"`
	// Tenant is catalog (default) or keep.
	Tenant string `yaml:"tenant"`
}

// Validate reports every invalid option, each naming its key; zero values
// are valid (they mean the default) except that File or Table must be set.
// New calls it.
func (o Options) Validate() error {
	var errs []error
	if o.File == "" && o.Table == "" {
		errs = append(errs, errors.New("file or table: set at least one catalog source (an NDJSON/CSV file or a DynamoDB table)"))
	}
	if o.Refresh != 0 && o.Refresh < time.Second {
		errs = append(errs, fmt.Errorf("refresh: %s is too short; use at least 1s (default %s)", o.Refresh, DefaultRefresh))
	}
	switch o.Unknown {
	case "", UnknownKeep, UnknownDrop, UnknownDeadLetter:
	default:
		errs = append(errs, fmt.Errorf("unknown: %q is not valid; use keep, drop or dead_letter", o.Unknown))
	}
	switch o.Tenant {
	case "", TenantCatalog, TenantKeep:
	default:
		errs = append(errs, fmt.Errorf("tenant: %q is not valid; use catalog or keep", o.Tenant))
	}
	return errors.Join(errs...)
}

func (o *Options) defaults() {
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Unknown == "" {
		o.Unknown = UnknownKeep
	}
	if o.Tenant == "" {
		o.Tenant = TenantCatalog
	}
}

// Stats counts what a Lookup did since it started.
type Stats struct {
	Entries         int       // assets in the current catalog
	Loaded          time.Time // when the current catalog was loaded
	RefreshFailures int64     // refreshes that failed (the previous catalog was kept)
	Unknown         int64     // events whose asset was not in the catalog
}

// Lookup is the asset_lookup processor. It is safe for concurrent use;
// Close stops its refresh goroutine.
type Lookup struct {
	opts Options
	api  ScanAPI
	log  *zap.Logger

	cat      atomic.Pointer[Catalog] // replaced whole by refresh, read by Process
	loaded   atomic.Int64            // unix nanoseconds of the current catalog
	failures atomic.Int64
	unknown  atomic.Int64

	fileStamp string // size and mtime of the file last loaded; only the refresh goroutine touches it after New

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates o, loads the catalog (blocking for the file read and the
// table Scan) and starts the refresh goroutine. api may be nil when
// o.Table is empty; log may be nil. An invalid option or a catalog that
// cannot be loaded is an error naming the option.
func New(ctx context.Context, o Options, api ScanAPI, log *zap.Logger) (*Lookup, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	if o.Table != "" && api == nil {
		return nil, fmt.Errorf("table: no DynamoDB client available")
	}
	if log == nil {
		log = zap.NewNop()
	}
	l := &Lookup{opts: o, api: api, log: log.With(zap.String("processor", Type))}
	cat, stamp, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	l.install(cat, stamp)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.wg.Add(1)
	go l.refreshLoop(rctx)
	return l, nil
}

// Register adds the asset_lookup type to r. Its constructor takes the
// DynamoDB client from deps.DynamoDB (required only when Options.Table is
// set) and the logger for refresh warnings from deps.Logger (optional).
func Register(r *processors.Registry) {
	r.RegisterProcessor(Type, func(ctx context.Context, opts processors.Options, deps processors.Deps) (processors.Processor, error) {
		var o Options
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		var api ScanAPI
		if deps.DynamoDB != nil {
			api = deps.DynamoDB
		} else if o.Table != "" {
			return nil, processors.MissingDep("DynamoDB", "asset_lookup reads its table with it")
		}
		return New(ctx, o, api, deps.Logger)
	})
}

// load reads every source; the table's entries override the file's.
func (l *Lookup) load(ctx context.Context) (Catalog, string, error) {
	cat := Catalog{}
	stamp := ""
	if l.opts.File != "" {
		fi, err := os.Stat(l.opts.File)
		if err != nil {
			return nil, "", fmt.Errorf("file: %w", err)
		}
		stamp = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		fc, err := ReadFile(l.opts.File)
		if err != nil {
			return nil, "", fmt.Errorf("file: %w", err)
		}
		cat = fc
	}
	if l.opts.Table != "" {
		tc, err := ReadTable(ctx, l.api, l.opts.Table)
		if err != nil {
			return nil, "", fmt.Errorf("table: %w", err)
		}
		for k, v := range tc {
			cat[k] = v
		}
	}
	return cat, stamp, nil
}

func (l *Lookup) install(cat Catalog, stamp string) {
	l.cat.Store(&cat)
	l.loaded.Store(time.Now().UnixNano())
	l.fileStamp = stamp
}

// refreshLoop reloads the catalog every Refresh until ctx ends.
func (l *Lookup) refreshLoop(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Refresh(ctx)
		}
	}
}

// Refresh reloads the catalog now: the file only if it changed, the table
// always. On failure the previous catalog stays and a warning is logged.
// It blocks for the I/O; the refresh goroutine calls it, and tests may.
// Not safe to call concurrently with itself.
func (l *Lookup) Refresh(ctx context.Context) {
	if l.opts.Table == "" {
		fi, err := os.Stat(l.opts.File)
		if err == nil && fmt.Sprint(fi.Size(), fi.ModTime().UnixNano()) == l.fileStamp {
			return
		}
	}
	cat, stamp, err := l.load(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.failures.Add(1)
			l.log.Warn("catalog refresh failed; keeping the previous catalog", zap.Error(err))
		}
		return
	}
	l.install(cat, stamp)
	l.log.Info("catalog loaded", zap.Int("entries", len(cat)))
}

// Close stops the refresh goroutine and waits for it.
func (l *Lookup) Close() error {
	l.cancel()
	l.wg.Wait()
	return nil
}

// Stats returns the counters. Safe for concurrent use.
func (l *Lookup) Stats() Stats {
	return Stats{
		Entries:         len(*l.cat.Load()),
		Loaded:          time.Unix(0, l.loaded.Load()),
		RefreshFailures: l.failures.Load(),
		Unknown:         l.unknown.Load(),
	}
}

// Get returns the catalog entry of an asset id. Safe for concurrent use.
func (l *Lookup) Get(assetID string) (Entry, bool) {
	e, ok := (*l.cat.Load())[assetID]
	return e, ok
}

// Process fills Asset (and Tenant, see Options.Tenant) of every parsed
// message with an asset_id. An unknown asset is kept, dropped or
// dead-lettered as Options.Unknown says. It does not block and never
// returns an error.
func (l *Lookup) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	cat := *l.cat.Load()
	out := batch[:0]
	for _, m := range batch {
		if !m.Parsed || m.Failed() != nil || m.Event.AssetID == "" {
			out = append(out, m)
			continue
		}
		e, ok := cat[m.Event.AssetID]
		if !ok {
			l.unknown.Add(1)
			switch l.opts.Unknown {
			case UnknownDrop:
				continue
			case UnknownDeadLetter:
				m.Fail(Type, 1, fmt.Errorf("%w: %q", ErrUnknownAsset, m.Event.AssetID))
			}
			out = append(out, m)
			continue
		}
		m.Event.Asset = event.Asset{Title: e.Title, Type: e.Type, Collection: e.Collection}
		if e.Customer != "" && (l.opts.Tenant == TenantCatalog || m.Event.Tenant == "") {
			m.Event.Tenant = e.Customer
		}
		out = append(out, m)
	}
	return out, nil
}
