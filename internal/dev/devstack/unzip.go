package devstack

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// unzipTop extracts the folder top/ of the zip at src so that it becomes
// dest, keeping each file's permission bits (bin/opensearch must stay
// executable). Entries outside top/, absolute paths and ".." are refused
// (zip slip). It extracts into a temporary sibling of dest and renames it
// into place, so dest is either complete or absent.
func unzipTop(src, top, dest string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("unzip %s: %w", src, err)
	}
	defer zr.Close()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("unzip %s: %w", src, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-")
	if err != nil {
		return fmt.Errorf("unzip %s: %w", src, err)
	}
	defer os.RemoveAll(tmp)
	// MkdirTemp makes 0700; the tree must be readable by the user that
	// runs OpenSearch when we are root.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("unzip %s: %w", src, err)
	}
	prefix := top + "/"
	for _, f := range zr.File {
		name := f.Name
		if name == prefix {
			continue
		}
		if !strings.HasPrefix(name, prefix) {
			return fmt.Errorf("unzip %s: entry %q is outside %s", src, name, prefix)
		}
		rel := strings.TrimPrefix(name, prefix)
		clean := filepath.Clean(filepath.FromSlash(rel))
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return fmt.Errorf("unzip %s: entry %q escapes the target folder", src, name)
		}
		if err := extractOne(f, filepath.Join(tmp, clean)); err != nil {
			return fmt.Errorf("unzip %s: %w", src, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("unzip %s: %w", src, err)
	}
	return nil
}

// extractOne writes one zip entry to path.
func extractOne(f *zip.File, path string) error {
	mode := f.Mode()
	switch {
	case mode.IsDir():
		return os.MkdirAll(path, mode.Perm()|0o700)
	case mode&os.ModeSymlink != 0:
		return fmt.Errorf("entry %q: symbolic links are not supported", f.Name)
	case !mode.IsRegular():
		return fmt.Errorf("entry %q: unsupported file type %s", f.Name, mode.Type())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	perm := mode.Perm()
	if perm == 0 {
		perm = 0o644 // zips made on Windows carry no Unix mode
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return fmt.Errorf("entry %q: %w", f.Name, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The umask may have cleared bits the archive sets.
	return os.Chmod(path, perm)
}
