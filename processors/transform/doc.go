// Package transform holds the built-in processors of a pipeline: parse
// (raw record → event.Event), useragent, geoip, anonymize_ip, asset_id and
// filter. Register adds them to a processors.Registry under those names, so
// a pipeline config can list them; each also has a constructor (NewParser,
// NewUserAgent, ...) taking its options struct, for programs that build a
// pipeline in Go.
//
// Every processor here is immutable after construction apart from internal,
// bounded, locked caches, so one instance is safe for concurrent use by
// every shard of a worker. None blocks on I/O (the GeoIP databases are
// memory-mapped) and none returns a batch error: a record that cannot be
// parsed is marked with Message.Fail and returned, for the pipeline to
// dead-letter; enrichers leave fields they cannot fill empty.
//
// # Order
//
// A typical chain is parse → useragent → geoip → anonymize_ip → asset_id →
// filter. parse must come first (the others read the event it fills).
// anonymize_ip must come after geoip: once the address is truncated, the
// lookup would answer for the wrong network. filter goes after the stages
// that fill the fields it tests (bot needs useragent, country_iso needs
// geoip).
//
// # Configuration errors
//
// Every constructor validates its options and returns an error wrapping
// ErrOption that names the offending option and what is valid, so a typo in
// the config stops the worker at start-up instead of silently enriching
// nothing.
package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/processors"
)

// ErrOption is wrapped by every error a constructor returns for a bad
// option (an unknown value, a missing required option, a file that cannot
// be opened).
var ErrOption = errors.New("transform: invalid option")

// optionError returns an error wrapping ErrOption that names the option.
func optionError(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrOption, option, fmt.Sprintf(format, args...))
}

// The type names Register uses, as they appear in a pipeline config.
const (
	TypeParse       = "parse"
	TypeUserAgent   = "useragent"
	TypeGeoIP       = "geoip"
	TypeAnonymizeIP = "anonymize_ip"
	TypeAssetID     = "asset_id"
	TypeFilter      = "filter"
)

// Register adds every processor type of this package to r. It panics if a
// name is already registered (see processors.Registry.RegisterProcessor),
// so call it once per registry. Constructors decode their options strictly:
// an unknown key is an error naming it.
func Register(r *processors.Registry) {
	register(r, TypeParse, NewParser)
	register(r, TypeUserAgent, NewUserAgent)
	register(r, TypeGeoIP, NewGeoIP)
	register(r, TypeAnonymizeIP, NewAnonymizeIP)
	register(r, TypeAssetID, NewAssetID)
	register(r, TypeFilter, NewFilter)
}

// register adds a type whose options decode into O and whose constructor
// is ctor.
func register[O any, P processors.Processor](r *processors.Registry, name string, ctor func(O) (P, error)) {
	r.RegisterProcessor(name, func(_ context.Context, opts processors.Options, _ processors.Deps) (processors.Processor, error) {
		var o O
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		p, err := ctor(o)
		if err != nil {
			return nil, err
		}
		return p, nil
	})
}
