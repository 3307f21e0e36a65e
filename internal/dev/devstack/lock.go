package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// lock takes an exclusive lock on <dir>/run/lock, so that two `dev up` or
// `dev down` runs on one folder (from any processes) do not both start a
// service and overwrite each other's PID files. It waits for a holder to
// finish, logging once, until ctx ends. The returned function releases
// the lock; the kernel also releases it if the process dies.
func (s *Stack) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(s.runDir(), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", s.cfg.Dir, err)
	}
	path := filepath.Join(s.runDir(), "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !logged {
			s.log.Info("waiting for another dev up or down on this folder", zap.String("lock", path))
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
