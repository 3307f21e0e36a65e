package workload

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
)

type bufCloser struct{ *bytes.Buffer }

func (bufCloser) Close() error { return nil }

func generate(t *testing.T, cfg Config) (map[string]*bytes.Buffer, []LogFile, *bytes.Buffer) {
	t.Helper()
	w := New(cfg)
	out := map[string]*bytes.Buffer{}
	files, err := w.WriteLogs(func(key string) (io.WriteCloser, error) {
		b := &bytes.Buffer{}
		out[key] = b
		return bufCloser{b}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var events bytes.Buffer
	if _, err := w.WriteAppEvents(&events); err != nil {
		t.Fatal(err)
	}
	return out, files, &events
}

func TestLogsParseAndAreDeterministic(t *testing.T) {
	cfg := Config{Hours: 24, PeakHour: 50, AppEvents: 200, Assets: 100, Tenants: 5}
	a, files, ev := generate(t, cfg)
	b, _, ev2 := generate(t, cfg)
	if len(files) != 24 {
		t.Fatalf("%d files", len(files))
	}
	total, bots, downloads := 0, 0, 0
	for _, f := range files {
		if !bytes.Equal(a[f.Key].Bytes(), b[f.Key].Bytes()) {
			t.Fatalf("%s differs between two runs with the same seed", f.Key)
		}
		if !strings.HasPrefix(f.Key, "E2DEMO5EXAMPLE."+f.Hour.Format("2006-01-02-15")+".") {
			t.Fatalf("key %s does not follow the CloudFront naming", f.Key)
		}
		zr, err := gzip.NewReader(bytes.NewReader(a[f.Key].Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		r := cloudfront.NewReader(zr)
		n := 0
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f.Key, err)
			}
			n++
			if strings.Contains(e.UserAgent, "bot") || strings.Contains(e.UserAgent, "curl") {
				bots++
			}
			if e.EventType == "download" {
				downloads++
			}
			if !strings.HasPrefix(e.URI, "/assets/") || e.EventTime.Hour() != f.Hour.Hour() {
				t.Fatalf("line %+v", e)
			}
		}
		if n != f.Lines {
			t.Fatalf("%s: parsed %d lines, generator said %d", f.Key, n, f.Lines)
		}
		total += n
	}
	if bots == 0 || downloads == 0 {
		t.Fatalf("no bots (%d) or downloads (%d) in %d lines", bots, downloads, total)
	}
	if !bytes.Equal(ev.Bytes(), ev2.Bytes()) {
		t.Fatal("app events differ between runs")
	}
	for i, line := range bytes.Split(bytes.TrimSpace(ev.Bytes()), []byte("\n")) {
		if _, err := appevent.Parse(line); err != nil {
			t.Fatalf("app event %d invalid: %v", i, err)
		}
	}
}

func TestDailyRhythm(t *testing.T) {
	w := New(Config{})
	night := w.requestsIn(w.cfg.Start.Add(3 * 3600e9))
	peak := w.requestsIn(w.cfg.Start.Add(14 * 3600e9))
	if peak < 2*night {
		t.Fatalf("peak %d vs night %d: no daily rhythm", peak, night)
	}
}
