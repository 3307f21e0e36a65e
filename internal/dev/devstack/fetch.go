package devstack

import (
	"bufio"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ErrChecksum means a download did not match its expected SHA-512; the
// partial file has been removed.
var ErrChecksum = errors.New("devstack: checksum mismatch")

// artifact is a file to download and verify.
type artifact struct {
	url string
	// sha512 is the expected hex digest. When empty, the digest published
	// next to the file (url + ".sha512", as Maven Central does) is used.
	sha512 string
}

// fetch makes dest a verified copy of a. A dest that already matches the
// digest is kept (the cache hit of a second `dev up`); otherwise the file
// is downloaded to dest+".part", hashed while it streams, and renamed over
// dest only when the digest matches. Progress is logged about every two
// seconds. It blocks until done or ctx ends.
func fetch(ctx context.Context, client *http.Client, log *zap.Logger, a artifact, dest string) error {
	want, err := expectedSHA512(ctx, client, a)
	if err != nil {
		return err
	}
	if got, err := fileSHA512(dest); err == nil && got == want {
		log.Info("download cached", zap.String("file", dest))
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", a.url, err)
	}
	got, err := download(ctx, client, log, a.url, dest+".part")
	if err != nil {
		os.Remove(dest + ".part")
		return err
	}
	if got != want {
		os.Remove(dest + ".part")
		return fmt.Errorf("download %s: %w: got sha512 %s, want %s", a.url, ErrChecksum, got, want)
	}
	if err := os.Rename(dest+".part", dest); err != nil {
		return fmt.Errorf("download %s: %w", a.url, err)
	}
	log.Info("download verified", zap.String("file", dest), zap.String("sha512", want[:16]+"…"))
	return nil
}

// expectedSHA512 returns a's pinned digest or, when none is pinned, the
// one published at a.url+".sha512" (the first hex field of that file).
func expectedSHA512(ctx context.Context, client *http.Client, a artifact) (string, error) {
	if a.sha512 != "" {
		return strings.ToLower(a.sha512), nil
	}
	u := a.url + ".sha512"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("get checksum %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get checksum %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get checksum %s: HTTP %s", u, resp.Status)
	}
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("get checksum %s: %w", u, err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || len(f[0]) != 128 {
		return "", fmt.Errorf("get checksum %s: not a SHA-512 digest: %q", u, line)
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return "", fmt.Errorf("get checksum %s: not a SHA-512 digest: %q", u, line)
	}
	return strings.ToLower(f[0]), nil
}

// download writes url to path and returns the body's SHA-512.
func download(ctx context.Context, client *http.Client, log *zap.Logger, url, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: HTTP %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer f.Close()
	h := sha512.New()
	pw := &progressWriter{log: log, url: url, total: resp.ContentLength, start: time.Now()}
	log.Info("downloading", zap.String("url", url), zap.Int64("bytes", resp.ContentLength))
	if _, err := io.Copy(io.MultiWriter(f, h, pw), resp.Body); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	log.Info("downloaded", zap.String("url", url), zap.Int64("bytes", pw.done), zap.Duration("took", time.Since(pw.start).Round(time.Millisecond)))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileSHA512 returns the hex SHA-512 of the file at path.
func fileSHA512(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// progressWriter counts bytes and logs progress at most every two seconds.
// It is used by one goroutine.
type progressWriter struct {
	log   *zap.Logger
	url   string
	total int64
	done  int64
	start time.Time
	last  time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 2*time.Second && now.Sub(p.start) >= 2*time.Second {
		p.last = now
		fields := []zap.Field{zap.Int64("bytes", p.done)}
		if p.total > 0 {
			fields = append(fields, zap.Int64("of", p.total), zap.Int64("percent", p.done*100/p.total))
		}
		p.log.Info("download progress", fields...)
	}
	return len(b), nil
}
