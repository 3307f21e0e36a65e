package devstack

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// mirror serves one file and, optionally, its published .sha512.
type mirror struct {
	body      []byte
	published string // content of .sha512; "" means 404
	gets      atomic.Int32
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, ".sha512"):
		if m.published == "" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(m.published))
	case strings.HasSuffix(r.URL.Path, ".zip"):
		m.gets.Add(1)
		w.Write(m.body)
	default:
		http.NotFound(w, r)
	}
}

func sha512Hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

func TestFetch(t *testing.T) {
	body := []byte(strings.Repeat("opensearch bytes ", 1000))
	good := sha512Hex(body)
	bad := sha512Hex([]byte("something else"))
	tests := []struct {
		name      string
		pinned    string
		published string
		wantErr   error
		errText   string
	}{
		{name: "pinned digest matches", pinned: good},
		{name: "published digest used when none pinned", published: good + "  opensearch.zip\n"},
		{name: "pinned digest wins over published", pinned: good, published: bad},
		{name: "pinned digest mismatch", pinned: bad, wantErr: ErrChecksum},
		{name: "published digest mismatch", published: bad, wantErr: ErrChecksum},
		{name: "no digest published", errText: "404"},
		{name: "published file is not a digest", published: "<html>oops</html>", errText: "not a SHA-512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &mirror{body: body, published: tt.published}
			srv := httptest.NewServer(m)
			defer srv.Close()
			dest := filepath.Join(t.TempDir(), "cache", "opensearch.zip")
			err := fetch(t.Context(), srv.Client(), zap.NewNop(), artifact{url: srv.URL + "/a/opensearch.zip", sha512: tt.pinned}, dest)
			if tt.wantErr == nil && tt.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(dest)
				if err != nil || string(got) != string(body) {
					t.Fatalf("dest content wrong (err %v)", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("err = %v, want it to mention %q", err, tt.errText)
			}
			for _, p := range []string{dest, dest + ".part"} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after a failed download", filepath.Base(p))
				}
			}
		})
	}
}

// TestFetchCached checks that a verified file is not downloaded again and
// a corrupted one is.
func TestFetchCached(t *testing.T) {
	body := []byte("zip content")
	m := &mirror{body: body}
	srv := httptest.NewServer(m)
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "opensearch.zip")
	a := artifact{url: srv.URL + "/opensearch.zip", sha512: sha512Hex(body)}
	ctx := context.Background()
	for range 2 {
		if err := fetch(ctx, srv.Client(), zap.NewNop(), a, dest); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.gets.Load(); n != 1 {
		t.Errorf("downloaded %d times, want 1 (second fetch should hit the cache)", n)
	}
	if err := os.WriteFile(dest, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fetch(ctx, srv.Client(), zap.NewNop(), a, dest); err != nil {
		t.Fatal(err)
	}
	if n := m.gets.Load(); n != 2 {
		t.Errorf("downloaded %d times, want 2 (a corrupted cache entry is fetched again)", n)
	}
}
