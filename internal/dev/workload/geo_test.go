package workload

import (
	"net/netip"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// TestIPsComeFromTheClaimedCities draws addresses and checks that each is
// inside a network of geoCities (or TEST-NET-2, the unknown share), never
// a .0 or .255, that every city is drawn with about its weight, and that
// the draw is deterministic.
func TestIPsComeFromTheClaimedCities(t *testing.T) {
	const n = 40000
	a, b := New(Config{}), New(Config{})
	total := 0
	for _, c := range geoCities {
		total += c.weight
	}
	count := make([]int, len(geoCities))
	unknown := 0
	testNet := netip.MustParsePrefix("198.51.100.0/24")
	for range n {
		s := a.IP()
		if s2 := b.IP(); s2 != s {
			t.Fatalf("two workloads with one seed drew %s and %s", s, s2)
		}
		ip := netip.MustParseAddr(s)
		if last := ip.As4()[3]; last == 0 || last == 255 {
			t.Fatalf("%s ends in .%d", ip, last)
		}
		if testNet.Contains(ip) {
			unknown++
			continue
		}
		found := false
		for i, c := range geoCities {
			for _, p := range c.nets {
				if netip.MustParsePrefix(p).Contains(ip) {
					count[i]++
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("%s is in no network of geoCities", ip)
		}
	}
	if got := float64(unknown) / n * 100; got < unknownPercent/2 || got > unknownPercent*2 {
		t.Errorf("%.1f%% unknown addresses, want about %d%%", got, unknownPercent)
	}
	for i, c := range geoCities {
		want := float64(n) * (1 - unknownPercent/100.0) * float64(c.weight) / float64(total)
		if got := float64(count[i]); got < want*0.8 || got > want*1.2 {
			t.Errorf("%s/%s drawn %d times, want about %.0f", c.iso, c.city, count[i], want)
		}
	}
}

// TestGeoCitiesMatchTheDatabase checks the generated table against the
// database it came from, as the local stack installs it: the first, a
// middle and the last address of every network lie in the claimed country
// and city. It fails when the pinned database changes and geonets.go was
// not regenerated (go generate ./internal/dev/workload).
func TestGeoCitiesMatchTheDatabase(t *testing.T) {
	db, err := maxminddb.Open(testenv.GeoIPCityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range geoCities {
		for _, n := range c.nets {
			p := netip.MustParsePrefix(n)
			first := p.Masked().Addr()
			b := first.As4()
			size := uint32(1) << (32 - p.Bits())
			u := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			for _, off := range []uint32{0, size / 2, size - 1} {
				v := u + off
				addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
				var rec struct {
					CC   string `maxminddb:"country_code"`
					City string `maxminddb:"city"`
				}
				if err := db.Lookup(addr).Decode(&rec); err != nil {
					t.Fatalf("%s: %v", addr, err)
				}
				if rec.CC != c.iso || rec.City != c.city {
					t.Errorf("%s (in %s): the database says %s/%s, the workload claims %s/%s", addr, n, rec.CC, rec.City, c.iso, c.city)
				}
			}
		}
	}
}
