package transform_test

import (
	"errors"
	"testing"

	"github.com/leasehold/leasehold/processors/transform"
)

// validator is the options type of a transform processor.
type validator interface{ Validate() error }

// TestOptionsValidate: each transform processor's options report every
// mistake, naming its YAML key, with ErrOption; the zero or a good value
// validates. The constructors call Validate, so they give these errors
// too (their own tests cover files that do not open).
func TestOptionsValidate(t *testing.T) {
	ptr := func(n int) *int { return &n }
	const pre = "transform: invalid option: "
	tests := []struct {
		name string
		o    validator
		want string // the whole message; "" means valid
	}{
		// parse
		{"parse: defaults", transform.ParserOptions{}, ""},
		{"parse: realtime with fields", transform.ParserOptions{Format: transform.FormatCloudFrontRealtime, Fields: []string{"timestamp", "c-ip"}}, ""},
		{"parse: unknown format", transform.ParserOptions{Format: "csv"},
			pre + `format: unknown format "csv"; valid: auto, cloudfront, app, cloudfront_realtime`},
		{"parse: fields without realtime", transform.ParserOptions{Fields: []string{"timestamp"}},
			pre + "fields: applies only to format cloudfront_realtime, not auto"},
		{"parse: realtime without fields", transform.ParserOptions{Format: transform.FormatCloudFrontRealtime},
			pre + "fields: format cloudfront_realtime needs the real-time log configuration's field list"},
		{"parse: unknown field", transform.ParserOptions{Format: transform.FormatCloudFrontRealtime, Fields: []string{"timestamp", "nonsense"}},
			pre + `fields: cloudfront: unknown real-time field "nonsense" (at position 2)`},
		// filter
		{"filter: one rule", transform.FilterOptions{Drop: []transform.Rule{{Field: "bot", Equals: true}}}, ""},
		{"filter: no rules", transform.FilterOptions{},
			pre + "drop: no rules; list conditions such as {field: bot, equals: true}"},
		{"filter: every bad rule", transform.FilterOptions{Drop: []transform.Rule{
			{Field: "bot", Equals: true},
			{Field: "colour", Equals: "red"},
			{Field: "status", Equals: 404, Prefix: "4"},
			{Field: "status", Prefix: "4"},
			{Field: "status", Equals: "404"},
			{Field: "uri", In: []any{}},
			{Equals: 1},
		}}, pre + `drop[1]: field "colour" is not supported; supported: bot, cache_result, country_iso, event_type, host, method, referring_domain, source, status, uri` + "\n" +
			pre + "drop[2]: field status: want exactly one of equals, in and prefix, have 2\n" +
			pre + "drop[3]: field status: prefix applies only to text fields\n" +
			pre + "drop[4]: field status: value 404 (string) is not an integer\n" +
			pre + "drop[5]: field uri: in is an empty list\n" +
			pre + "drop[6]: field is missing; supported: bot, cache_result, country_iso, event_type, host, method, referring_domain, source, status, uri"},
		// geoip
		{"geoip: city only", transform.GeoIPOptions{CityDB: "city.mmdb"}, ""},
		{"geoip: asn only", transform.GeoIPOptions{ASNDB: "asn.mmdb"}, ""},
		{"geoip: no database", transform.GeoIPOptions{},
			pre + "city_db: neither city_db nor asn_db is set; give the path of at least one MaxMind database"},
		{"geoip: both mistakes", transform.GeoIPOptions{CacheSize: -1},
			pre + "city_db: neither city_db nor asn_db is set; give the path of at least one MaxMind database\n" +
				pre + "cache_size: -1 is negative; use 0 for the default (16384) or a positive number of entries"},
		// useragent
		{"useragent: defaults", transform.UserAgentOptions{}, ""},
		{"useragent: extra bots", transform.UserAgentOptions{CacheSize: 10, Bots: []string{"my-monitor"}}, ""},
		{"useragent: negative cache", transform.UserAgentOptions{CacheSize: -5},
			pre + "cache_size: -5 is negative; use 0 for the default (16384) or a positive number of entries"},
		{"useragent: empty bots", transform.UserAgentOptions{Bots: []string{"ok", " ", ""}},
			pre + "bots: entry 1 is empty; it would mark every agent as a robot\n" +
				pre + "bots: entry 2 is empty; it would mark every agent as a robot"},
		// asset_id
		{"asset_id: pattern and tenant", transform.AssetIDOptions{Pattern: `^/a/(?P<asset>[^/]+)/`, TenantPattern: `^/(?P<tenant>[^/]+)/`}, ""},
		{"asset_id: no pattern", transform.AssetIDOptions{},
			pre + "pattern: missing; give a regular expression with a named group (?P<asset>...) matched against the URI"},
		{"asset_id: both patterns bad", transform.AssetIDOptions{Pattern: "(", TenantPattern: "x"},
			pre + "pattern: error parsing regexp: missing closing ): `(`\n" +
				pre + `tenant_pattern: "x" has no named group "tenant"; write (?P<tenant>...) around the part to extract`},
		{"asset_id: no asset group", transform.AssetIDOptions{Pattern: `^/a/([^/]+)/`},
			pre + `pattern: "^/a/([^/]+)/" has no named group "asset"; write (?P<asset>...) around the part to extract`},
		// anonymize_ip
		{"anonymize_ip: defaults", transform.AnonymizeIPOptions{}, ""},
		{"anonymize_ip: edges", transform.AnonymizeIPOptions{IPv4Prefix: ptr(0), IPv6Prefix: ptr(128)}, ""},
		{"anonymize_ip: both out of range", transform.AnonymizeIPOptions{IPv4Prefix: ptr(33), IPv6Prefix: ptr(-1)},
			pre + "ipv4_prefix: 33 is out of range; want 0 to 32 bits to keep\n" +
				pre + "ipv6_prefix: -1 is out of range; want 0 to 128 bits to keep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
			if !errors.Is(err, transform.ErrOption) {
				t.Errorf("error does not wrap ErrOption")
			}
		})
	}
}
