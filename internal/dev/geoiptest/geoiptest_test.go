package geoiptest_test

import (
	"bytes"
	"net/netip"
	"os"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/leasehold/leasehold/internal/dev/geoiptest"
)

// TestDatabasesAreDeterministicAndHoldTheTables writes the databases twice
// (byte-identical files) and reads every table entry back with the reader
// the geoip processor uses.
func TestDatabasesAreDeterministicAndHoldTheTables(t *testing.T) {
	a, b := geoiptest.Databases(t), geoiptest.Databases(t)
	for _, p := range [][2]string{{a.City, b.City}, {a.ASN, b.ASN}, {a.FlatCity, b.FlatCity}} {
		x, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(p[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs", p[0])
		}
	}
	city := open(t, a.City, geoiptest.CityType)
	flat := open(t, a.FlatCity, geoiptest.FlatCityType)
	for _, c := range geoiptest.Cities {
		addr := netip.MustParsePrefix(c.Network).Addr()
		var r struct {
			Country struct {
				ISO   string            `maxminddb:"iso_code"`
				Names map[string]string `maxminddb:"names"`
			} `maxminddb:"country"`
			City struct {
				Names map[string]string `maxminddb:"names"`
			} `maxminddb:"city"`
		}
		if err := city.Lookup(addr).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Country.ISO != c.CountryISO || r.Country.Names["en"] != c.Country || r.City.Names["en"] != c.City {
			t.Errorf("city %s: %+v, want %+v", addr, r, c)
		}
		if !addr.Is4() {
			continue
		}
		var fr struct {
			CountryCode string `maxminddb:"country_code"`
			City        string `maxminddb:"city"`
		}
		if err := flat.Lookup(addr).Decode(&fr); err != nil {
			t.Fatal(err)
		}
		if fr.CountryCode != c.CountryISO || fr.City != c.City {
			t.Errorf("flat city %s: %+v, want %+v", addr, fr, c)
		}
	}
	asn := open(t, a.ASN, geoiptest.ASNType)
	for _, want := range geoiptest.ASNs {
		var r struct {
			Number uint32 `maxminddb:"autonomous_system_number"`
			Org    string `maxminddb:"autonomous_system_organization"`
		}
		addr := netip.MustParsePrefix(want.Network).Addr().Next()
		if err := asn.Lookup(addr).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Number != want.Number || r.Org != want.Org {
			t.Errorf("asn %s: %+v, want %+v", addr, r, want)
		}
	}
}

func open(t *testing.T, path, dbType string) *maxminddb.Reader {
	t.Helper()
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.Metadata.DatabaseType != dbType {
		t.Fatalf("%s: type %q, want %q", path, db.Metadata.DatabaseType, dbType)
	}
	return db
}
