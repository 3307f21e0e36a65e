package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Companions are programs that run beside the stack's servers and belong
// with them, such as the demo's explorer: started in the background by a
// command (the demo), recorded in run/companion-<name>.pid like a server,
// and stopped by Down (when it stops the whole stack) before the servers
// they read from. They are never started by Up.

const companionPrefix = "companion-"

// companionStop bounds the wait after SIGTERM before SIGKILL.
const companionStop = 10 * time.Second

// StartCompanion stops a companion called name that is still running from
// an earlier start, then starts argv with env in the background (its own
// session, output to logs/<name>.log), records it, and waits until ready
// (when given) returns nil, the process exits, or 30s pass. It returns the
// log's path.
func (s *Stack) StartCompanion(ctx context.Context, name string, argv, env []string, ready func(context.Context) error) (string, error) {
	if err := s.StopCompanion(ctx, name); err != nil {
		return "", err
	}
	logPath := s.logPath(name)
	r, err := spawn(s.cfg.ProcRoot, launchSpec{argv: argv, env: env}, logPath)
	if err != nil {
		return "", err
	}
	r.Service = name
	if err := writeRecord(s.pidPath(companionPrefix+name), r); err != nil {
		syscall.Kill(-r.PID, syscall.SIGKILL)
		return "", err
	}
	if ready == nil {
		return logPath, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(pctx)
		cancel()
		if err == nil {
			return logPath, nil
		}
		if ok, status := alive(s.cfg.ProcRoot, r.PID); !ok {
			os.Remove(s.pidPath(companionPrefix + name))
			return logPath, fmt.Errorf("%s exited (%s); tail of %s:\n%s", name, status, logPath, tailFile(logPath, 20))
		}
		if time.Now().After(deadline) {
			return logPath, fmt.Errorf("%s not ready after 30s: %v; see %s", name, err, logPath)
		}
		select {
		case <-ctx.Done():
			return logPath, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StopCompanion stops the companion called name if its recorded process
// still runs (by PID, checked against the record, never by name) and
// removes its record. Nothing running is not an error.
func (s *Stack) StopCompanion(ctx context.Context, name string) error {
	path := s.pidPath(companionPrefix + name)
	r, err := readRecord(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		if st, _, cerr := checkRecord(s.cfg.ProcRoot, r); cerr == nil && st == procOurs {
			s.log.Info("stopping", zap.String("companion", name), zap.Int("pid", r.PID))
			if err := terminate(ctx, s.cfg.ProcRoot, r, companionStop); err != nil {
				return fmt.Errorf("stop %s: %w", name, err)
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// stopCompanions stops every recorded companion.
func (s *Stack) stopCompanions(ctx context.Context) []error {
	matches, _ := filepath.Glob(filepath.Join(s.runDir(), companionPrefix+"*.pid"))
	var errs []error
	for _, m := range matches {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), companionPrefix), ".pid")
		if err := s.StopCompanion(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
