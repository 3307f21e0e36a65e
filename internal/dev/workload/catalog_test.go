package workload

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
)

func TestCatalog(t *testing.T) {
	w := New(Config{Assets: 300, Tenants: 7})
	cat := w.Catalog()
	if want := 300 - 300/catalogGap; len(cat) != want {
		t.Fatalf("%d entries, want %d (every %dth asset left out)", len(cat), want, catalogGap)
	}
	var buf bytes.Buffer
	if n, err := w.WriteCatalog(&buf); err != nil || n != len(cat) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e CatalogEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e != cat[i] || e.Title == "" || e.Collection == "" || e.Customer == "" || e.Type == "" {
			t.Fatalf("line %d: %+v", i, e)
		}
	}
	if New(Config{Assets: 300, Tenants: 7}).Assets[17].Title != w.Assets[17].Title {
		t.Fatal("titles must be deterministic")
	}
}

// TestStories checks that the rising assets gain and the fading one loses
// in the second half of the period, which the explorer's highlights show.
func TestStories(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	w := New(Config{Start: start, Hours: 14 * 24, PeakHour: 100})
	half := start.Add(7 * 24 * time.Hour)
	count := map[string][2]int{}
	_, err := w.WriteLogs(func(string) (io.WriteCloser, error) { return &sink{count: count, half: half}, nil })
	if err != nil {
		t.Fatal(err)
	}
	rising, fading := w.Stories()
	for _, id := range rising {
		if c := count[id]; c[1] < 2*c[0] {
			t.Errorf("rising asset %s: %d then %d requests", id, c[0], c[1])
		}
	}
	for _, id := range fading {
		if c := count[id]; c[1]*2 > c[0] {
			t.Errorf("fading asset %s: %d then %d requests", id, c[0], c[1])
		}
	}
}

type sink struct {
	bytes.Buffer
	count map[string][2]int
	half  time.Time
}

func (s *sink) Close() error {
	zr, err := gzip.NewReader(&s.Buffer)
	if err != nil {
		return err
	}
	r := cloudfront.NewReader(zr)
	for {
		e, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		id := strings.Split(e.URI, "/")[2]
		c := s.count[id]
		if e.EventTime.Before(s.half) {
			c[0]++
		} else {
			c[1]++
		}
		s.count[id] = c
	}
}
