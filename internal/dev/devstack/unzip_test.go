package devstack

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type zipEntry struct {
	name string
	mode os.FileMode
	body string
}

func writeZip(t *testing.T, entries []zipEntry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if !e.mode.IsDir() {
			w.Write([]byte(e.body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestUnzipTop(t *testing.T) {
	src := writeZip(t, []zipEntry{
		{"opensearch-9.9.9/", os.ModeDir | 0o755, ""},
		{"opensearch-9.9.9/bin/", os.ModeDir | 0o755, ""},
		{"opensearch-9.9.9/bin/opensearch", 0o755, "#!/bin/sh\n"},
		{"opensearch-9.9.9/config/jvm.options", 0o644, "-Xms1g\n"},
	})
	dest := filepath.Join(t.TempDir(), "opensearch-9.9.9")
	if err := unzipTop(src, "opensearch-9.9.9", dest); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dest, "bin", "opensearch"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("bin/opensearch mode = %s, want -rwxr-xr-x", st.Mode().Perm())
	}
	b, err := os.ReadFile(filepath.Join(dest, "config", "jvm.options"))
	if err != nil || string(b) != "-Xms1g\n" {
		t.Errorf("config/jvm.options = %q, %v", b, err)
	}
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("dest folder mode = %v, %v; want 0755 so another user can read it", st.Mode().Perm(), err)
	}
	leftovers, _ := filepath.Glob(dest + ".tmp-*")
	if len(leftovers) > 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}
}

func TestUnzipTopRefusesEscapes(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{"parent path", "top/../../evil", "escapes"},
		{"outside top", "other/file", "outside"},
		{"absolute-looking", "/etc/passwd", "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeZip(t, []zipEntry{{"top/ok", 0o644, "x"}, {tt.entry, 0o644, "x"}})
			dest := filepath.Join(t.TempDir(), "out")
			err := unzipTop(src, "top", dest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Error("dest exists after a refused archive")
			}
		})
	}
}
