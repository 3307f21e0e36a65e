package transform_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors/transform"
)

func newTestGeoIP(t testing.TB, o transform.GeoIPOptions) *transform.GeoIP {
	t.Helper()
	g, err := transform.NewGeoIP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func TestGeoIPLookup(t *testing.T) {
	dbs := testGeoDBs(t)
	city, asn, flat := dbs.City, dbs.ASN, dbs.FlatCity
	tests := []struct {
		name string
		opts transform.GeoIPOptions
		ip   string
		had  event.Geo // set by the parser before geoip runs
		want event.Geo
	}{
		// The flat layout of ip-location-db (the demo's DB-IP database):
		// country name from the ISO code.
		{"flat layout", transform.GeoIPOptions{CityDB: flat, ASNDB: asn}, "89.160.20.112", event.Geo{},
			event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"}},
		{"flat layout london", transform.GeoIPOptions{CityDB: flat}, "81.2.69.142", event.Geo{},
			event.Geo{CountryISO: "GB", Country: "United Kingdom", City: "London"}},
		{"flat layout, ipv6 in an ipv4-only database", transform.GeoIPOptions{CityDB: flat}, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", event.Geo{}, event.Geo{}},
		{"flat layout, cloudfront country disagrees", transform.GeoIPOptions{CityDB: flat}, "89.160.20.112",
			event.Geo{CountryISO: "DK"}, event.Geo{CountryISO: "DK"}},
		{"city and asn", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "89.160.20.112", event.Geo{},
			event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"}},
		{"city only db", transform.GeoIPOptions{CityDB: city}, "89.160.20.112", event.Geo{},
			event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping"}},
		{"asn only db", transform.GeoIPOptions{ASNDB: asn}, "89.160.20.112", event.Geo{},
			event.Geo{ASN: 29518, ASOrg: "Bredband2 AB"}},
		{"london", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "81.2.69.142", event.Geo{},
			event.Geo{CountryISO: "GB", Country: "United Kingdom", City: "London"}},
		{"asn without organisation", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "216.160.83.56", event.Geo{},
			event.Geo{CountryISO: "US", Country: "United States", City: "Milton", ASN: 209}},
		{"ipv6 country without city", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", event.Geo{},
			event.Geo{CountryISO: "NO", Country: "Norway"}},
		{"ipv4-mapped ipv6", transform.GeoIPOptions{CityDB: city}, "::ffff:81.2.69.142", event.Geo{},
			event.Geo{CountryISO: "GB", Country: "United Kingdom", City: "London"}},
		{"asn data but no city data", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "1.0.0.1", event.Geo{},
			event.Geo{ASN: 15169, ASOrg: "Google Inc."}},
		{"loopback", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "127.0.0.1", event.Geo{}, event.Geo{}},
		{"private", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "10.1.2.3", event.Geo{}, event.Geo{}},
		{"private v6", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "fd00::1", event.Geo{}, event.Geo{}},
		{"unknown public", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "2001:db8::1", event.Geo{}, event.Geo{}},
		{"invalid", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "not-an-ip", event.Geo{}, event.Geo{}},
		{"empty", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "", event.Geo{}, event.Geo{}},
		{"cloudfront country agrees: names filled", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "89.160.20.112",
			event.Geo{CountryISO: "SE", ASN: 29518},
			event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"}},
		{"cloudfront country disagrees: kept, no mixed names", transform.GeoIPOptions{CityDB: city, ASNDB: asn}, "89.160.20.112",
			event.Geo{CountryISO: "DK", ASN: 1},
			event.Geo{CountryISO: "DK", ASN: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGeoIP(t, tc.opts)
			for _, pass := range []string{"decoded", "cached"} {
				batch := messages([]byte("-"))
				batch[0].Parsed = true
				batch[0].Event.ClientIP = tc.ip
				batch[0].Event.Geo = tc.had
				out, err := g.Process(context.Background(), batch)
				if err != nil || len(out) != 1 {
					t.Fatalf("Process: %d messages, %v", len(out), err)
				}
				if got := out[0].Event.Geo; got != tc.want {
					t.Fatalf("%s: geo %+v, want %+v", pass, got, tc.want)
				}
			}
		})
	}
}

func TestGeoIPOptionErrors(t *testing.T) {
	dbs := testGeoDBs(t)
	city, asn := dbs.City, dbs.ASN
	notDB := filepath.Join(t.TempDir(), "x.mmdb")
	if err := os.WriteFile(notDB, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts transform.GeoIPOptions
		want []string // the error must contain each
	}{
		{"none", transform.GeoIPOptions{}, []string{"city_db", "asn_db", "at least one"}},
		{"missing city file", transform.GeoIPOptions{CityDB: "/nonexistent/City.mmdb"}, []string{"city_db", "/nonexistent/City.mmdb", "no such file"}},
		{"missing asn file", transform.GeoIPOptions{CityDB: city, ASNDB: "/nonexistent/ASN.mmdb"}, []string{"asn_db", "/nonexistent/ASN.mmdb"}},
		{"not a database", transform.GeoIPOptions{CityDB: notDB}, []string{"city_db", notDB}},
		{"swapped paths", transform.GeoIPOptions{CityDB: asn, ASNDB: city}, []string{"city_db", "GeoLite2-ASN database"}},
		{"asn db is a city db", transform.GeoIPOptions{ASNDB: city}, []string{"asn_db", "GeoLite2-City database"}},
		{"negative cache", transform.GeoIPOptions{CityDB: city, CacheSize: -5}, []string{"cache_size", "-5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := transform.NewGeoIP(tc.opts)
			if err == nil {
				_ = g.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, transform.ErrOption) {
				t.Fatalf("error %v does not wrap ErrOption", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestGeoIPConcurrent looks up from several goroutines, as several shards
// do, with a cache smaller than the set of records.
func TestGeoIPConcurrent(t *testing.T) {
	dbs := testGeoDBs(t)
	g := newTestGeoIP(t, transform.GeoIPOptions{CityDB: dbs.City, ASNDB: dbs.ASN, CacheSize: 2})
	ips := map[string]string{"89.160.20.112": "SE", "81.2.69.142": "GB", "216.160.83.56": "US", "175.16.199.1": "CN", "127.0.0.1": ""}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Go(func() {
			for range 200 {
				for ip, want := range ips {
					batch := messages([]byte("-"))
					batch[0].Parsed = true
					batch[0].Event.ClientIP = ip
					_, _ = g.Process(context.Background(), batch)
					if got := batch[0].Event.Geo.CountryISO; got != want {
						errs <- ip + " → " + got + ", want " + want
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
