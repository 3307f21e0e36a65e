package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// RunS3Server serves S3 (gofakes3) on addr, which must be a loopback
// address, storing every bucket and object in one bolt database,
// dir/s3.bolt, so data survives a restart. It blocks until ctx ends, then
// shuts down gracefully (up to five seconds). Errors: a non-loopback or
// busy address, an unusable dir, a database another server holds open.
func RunS3Server(ctx context.Context, addr, dir string, log *zap.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("s3 server: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("s3 server: address %q: the local stack listens on loopback only (use 127.0.0.1:PORT)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("s3 server: %w", err)
	}
	return ServeS3(ctx, ln, dir, log)
}

// ServeS3 is RunS3Server on a listener the caller opened (tests use
// 127.0.0.1:0). It closes ln before returning.
func ServeS3(ctx context.Context, ln net.Listener, dir string, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	handler, db, err := newS3Handler(dir, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer db.Close()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("s3 server listening", zap.String("addr", ln.Addr().String()), zap.String("dir", dir), zap.String("gofakes3", GoFakeS3Version()))

	select {
	case err := <-served:
		return fmt.Errorf("s3 server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("s3 server: shutdown: %w", err)
	}
	log.Info("s3 server stopped")
	return nil
}

// newS3Handler returns gofakes3 over a bolt database in dir. Bolt keeps
// each write in one transaction, so If-None-Match: * is checked and the
// object stored atomically, and any key works (a folder-per-prefix
// backend cannot hold both "a" and "a/b", and keeps empty folders that
// make DeleteBucket fail with BucketNotEmpty). Buckets are not created on
// first use (as on AWS, PutObject to a missing bucket is NoSuchBucket),
// and Content-MD5 is verified when sent. The caller closes the database.
func newS3Handler(dir string, log *zap.Logger) (http.Handler, *bolt.DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("s3 server: data folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, "s3.bolt")
	// The timeout turns "another s3-server holds the file lock" into an
	// error instead of a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("s3 server: open %s: %w (another s3 server holds it; see `leasehold dev status`)", path, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("s3 server: open %s: %w", path, err)
	}
	faker := gofakes3.New(newBoltBackend(db),
		gofakes3.WithLogger(s3Logger{log}),
		gofakes3.WithIntegrityCheck(true),
	)
	return faker.Server(), db, nil
}

// s3Logger sends gofakes3's log lines to zap; its per-request INFO lines
// go to debug.
type s3Logger struct{ log *zap.Logger }

func (l s3Logger) Print(level gofakes3.LogLevel, v ...interface{}) {
	msg := fmt.Sprint(v...)
	switch level {
	case gofakes3.LogErr:
		l.log.Error("gofakes3", zap.String("msg", msg))
	case gofakes3.LogWarn:
		l.log.Warn("gofakes3", zap.String("msg", msg))
	default:
		l.log.Debug("gofakes3", zap.String("msg", msg))
	}
}
