package transform_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/processors/transform"
)

func TestAssetID(t *testing.T) {
	const assets = `^/assets/(?P<asset>[A-Za-z0-9-]+)/`
	tests := []struct {
		name                  string
		opts                  transform.AssetIDOptions
		uri                   string
		hadAsset, hadTenant   string
		wantAsset, wantTenant string
	}{
		{"match", transform.AssetIDOptions{Pattern: assets}, "/assets/a-1/film.mp4", "", "", "a-1", ""},
		{"no match", transform.AssetIDOptions{Pattern: assets}, "/index.html", "", "", "", ""},
		{"empty uri", transform.AssetIDOptions{Pattern: assets}, "", "", "", "", ""},
		{"app event keeps its own", transform.AssetIDOptions{Pattern: assets}, "/assets/a-1/x", "own", "", "own", ""},
		{"tenant pattern", transform.AssetIDOptions{Pattern: assets, TenantPattern: `^/t/(?P<tenant>[a-z]+)/`}, "/t/acme/assets/x", "", "", "", "acme"},
		{"one pattern for both", transform.AssetIDOptions{
			Pattern:       `^/(?P<tenant>[a-z]+)/(?P<asset>[0-9]+)\.`,
			TenantPattern: `^/(?P<tenant>[a-z]+)/(?P<asset>[0-9]+)\.`,
		}, "/acme/42.jpg", "", "", "42", "acme"},
		{"tenant kept", transform.AssetIDOptions{Pattern: assets, TenantPattern: `^/t/(?P<tenant>[a-z]+)/`}, "/t/acme/", "", "own", "", "own"},
		{"optional group unmatched", transform.AssetIDOptions{Pattern: `^/v(?:/(?P<asset>\d+))?`}, "/v", "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := transform.NewAssetID(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			batch := messages([]byte("-"))
			batch[0].Parsed = true
			batch[0].Event.URI = tc.uri
			batch[0].Event.AssetID, batch[0].Event.Tenant = tc.hadAsset, tc.hadTenant
			if _, err := a.Process(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			if e := batch[0].Event; e.AssetID != tc.wantAsset || e.Tenant != tc.wantTenant {
				t.Fatalf("asset %q tenant %q, want %q %q", e.AssetID, e.Tenant, tc.wantAsset, tc.wantTenant)
			}
		})
	}
}

func TestAssetIDOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts transform.AssetIDOptions
		want string
	}{
		{"missing", transform.AssetIDOptions{}, "pattern: missing"},
		{"no group", transform.AssetIDOptions{Pattern: `^/assets/([a-z]+)/`}, `pattern: "^/assets/([a-z]+)/" has no named group "asset"`},
		{"bad regexp", transform.AssetIDOptions{Pattern: `^/assets/(?P<asset>[a-z+/`}, "pattern: error parsing regexp"},
		{"tenant without group", transform.AssetIDOptions{Pattern: `(?P<asset>.+)`, TenantPattern: `^/(?P<t>[a-z]+)`}, `tenant_pattern: "^/(?P<t>[a-z]+)" has no named group "tenant"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transform.NewAssetID(tc.opts)
			if !errors.Is(err, transform.ErrOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrOption containing %q", err, tc.want)
			}
		})
	}
}
