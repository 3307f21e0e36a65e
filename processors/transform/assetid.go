package transform

import (
	"context"
	"errors"
	"regexp"

	"github.com/leasehold/leasehold/processors"
)

// AssetIDOptions configures the asset_id processor.
type AssetIDOptions struct {
	// Pattern is a Go regular expression (RE2 syntax) matched against
	// Event.URI, with a named group "asset" whose match becomes AssetID,
	// e.g. `^/assets/(?P<asset>[A-Za-z0-9-]+)/`. Required.
	Pattern string `yaml:"pattern"`
	// TenantPattern is an optional regular expression matched against
	// Event.URI, with a named group "tenant" whose match becomes Tenant.
	// It may be the same expression as Pattern, with both groups.
	TenantPattern string `yaml:"tenant_pattern"`
}

// AssetID is the asset_id processor: it extracts Event.AssetID (and
// optionally Event.Tenant) from Event.URI for events that do not carry
// them (CloudFront requests; app events name their asset themselves). It
// is immutable and safe for concurrent use.
type AssetID struct {
	asset, tenant       *regexp.Regexp
	assetIdx, tenantIdx int
}

// Validate reports every invalid option, each naming its key and wrapping
// ErrOption: a missing or invalid pattern, or one without its named group.
func (o AssetIDOptions) Validate() error {
	_, err := o.compile()
	return err
}

func (o AssetIDOptions) compile() (*AssetID, error) {
	a := &AssetID{}
	var errs []error
	var err error
	if o.Pattern == "" {
		errs = append(errs, optionError("pattern", "missing; give a regular expression with a named group (?P<asset>...) matched against the URI"))
	} else if a.asset, a.assetIdx, err = compileGroup("pattern", o.Pattern, "asset"); err != nil {
		errs = append(errs, err)
	}
	if o.TenantPattern != "" {
		if a.tenant, a.tenantIdx, err = compileGroup("tenant_pattern", o.TenantPattern, "tenant"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// NewAssetID compiles the patterns. Options that do not Validate are an
// error wrapping ErrOption.
func NewAssetID(o AssetIDOptions) (*AssetID, error) { return o.compile() }

func compileGroup(option, expr, group string) (*regexp.Regexp, int, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, 0, optionError(option, "%v", err)
	}
	i := re.SubexpIndex(group)
	if i < 0 {
		return nil, 0, optionError(option, "%q has no named group %q; write (?P<%s>...) around the part to extract", expr, group, group)
	}
	return re, i, nil
}

// Process fills AssetID (and Tenant) of every parsed message where it is
// empty and the URI matches; a URI that does not match, or an empty group
// match, leaves the field empty. It never fails and does not block.
func (a *AssetID) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if !m.Parsed || m.Failed() != nil || m.Event.URI == "" {
			continue
		}
		if m.Event.AssetID == "" {
			m.Event.AssetID = submatch(a.asset, a.assetIdx, m.Event.URI)
		}
		if a.tenant != nil && m.Event.Tenant == "" {
			m.Event.Tenant = submatch(a.tenant, a.tenantIdx, m.Event.URI)
		}
	}
	return batch, nil
}

// submatch returns group i of re's first match in s, or "".
func submatch(re *regexp.Regexp, i int, s string) string {
	loc := re.FindStringSubmatchIndex(s)
	if loc == nil || loc[2*i] < 0 {
		return ""
	}
	return s[loc[2*i]:loc[2*i+1]]
}
