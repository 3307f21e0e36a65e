package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Up installs what the named services need (DefaultServices when names is
// empty, and then the demo's GeoIP database too),
// starts each one that is not already running and waits until every one
// of them answers a real request. It is idempotent: a running service is
// reported ("already running") and only probed. It blocks for downloads
// and start-up (OpenSearch can take a minute on two cores), bounded per
// service; servers keep running after Up returns. Up and Down on one
// folder are serialised by a lock file, across processes too.
//
// Errors: ErrUnknownService for a bad name; *PortInUseError when a port
// is taken by a process the stack did not start (nothing is started
// then); otherwise install or start-up failures, one per service, each
// with the tail of that service's log. A server that starts but never
// becomes ready is stopped again.
func (s *Stack) Up(ctx context.Context, names []string) error {
	all := len(names) == 0
	if all {
		names = s.DefaultServices()
	}
	return s.up(ctx, names, all)
}

// UpWith is Up of DefaultServices and the services named in extra (`dev
// up --with elasticsearch`), GeoIP database included.
func (s *Stack) UpWith(ctx context.Context, extra []string) error {
	return s.up(ctx, append(s.DefaultServices(), extra...), true)
}

func (s *Stack) up(ctx context.Context, names []string, all bool) error {
	svcs, err := s.selectServices(names)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("dev up: %w", err)
	}
	defer unlock()
	for _, d := range []string{s.runDir(), s.logDir(), s.dataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("dev up: %w", err)
		}
	}

	var running, toStart []*service
	records := map[string]Record{}
	for _, svc := range svcs {
		r, st, why, err := s.recordState(svc)
		if err != nil {
			return fmt.Errorf("dev up: %w", err)
		}
		switch st {
		case stateRunning:
			s.log.Info("already running", zap.String("service", svc.name), zap.Int("pid", r.PID), zap.String("endpoint", s.Endpoint(svc.name)))
			running = append(running, svc)
			records[svc.name] = r
			continue
		case stateStale:
			s.log.Warn("removing stale pid file", zap.String("service", svc.name), zap.String("reason", why))
			if err := os.Remove(s.pidPath(svc.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("dev up: %w", err)
			}
		}
		toStart = append(toStart, svc)
	}

	var portErrs []error
	for _, svc := range toStart {
		if err := s.portsFree(svc); err != nil {
			portErrs = append(portErrs, err)
		}
	}
	if len(portErrs) > 0 {
		return errors.Join(portErrs...)
	}

	if err := s.install(ctx, toStart, all); err != nil {
		return err
	}

	var startErrs []error
	for _, svc := range toStart {
		r, err := s.start(ctx, svc)
		if err != nil {
			startErrs = append(startErrs, err)
			continue
		}
		records[svc.name] = r
		running = append(running, svc)
	}

	// Wait for all in parallel; one slow or failed service does not stop
	// the wait for the others.
	var (
		mu       sync.Mutex
		waitErrs []error
		wg       sync.WaitGroup
	)
	started := map[string]bool{}
	for _, svc := range toStart {
		started[svc.name] = true
	}
	for _, svc := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.waitReady(ctx, svc, records[svc.name])
			if err == nil {
				return
			}
			if started[svc.name] && ctx.Err() == nil {
				s.stopAfterFailure(ctx, svc, records[svc.name])
			}
			mu.Lock()
			waitErrs = append(waitErrs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(append(startErrs, waitErrs...)...)
}

// install fetches what the services about to start need, npm packages and
// the search servers' zips in parallel, and the GeoIP database when geoip
// is set.
func (s *Stack) install(ctx context.Context, svcs []*service, geoip bool) error {
	var needNPM bool
	var dists []searchDist
	for _, svc := range svcs {
		switch svc.name {
		case Kinesis, DynamoDB:
			needNPM = true
		case OpenSearch:
			dists = append(dists, openSearchDist)
		case Elasticsearch:
			dists = append(dists, elasticsearchDist)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	if needNPM {
		g.Go(func() error { return s.installNPM(gctx) })
	}
	for _, d := range dists {
		g.Go(func() error { return s.installSearch(gctx, d) })
	}
	if geoip {
		g.Go(func() error { return s.installGeoIP(gctx) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("dev up: %w", err)
	}
	return nil
}

// start launches svc and records it in its PID file.
func (s *Stack) start(ctx context.Context, svc *service) (Record, error) {
	spec, err := s.launch(ctx, svc)
	if err != nil {
		return Record{}, fmt.Errorf("start %s: %w", svc.name, err)
	}
	s.log.Info("starting", zap.String("service", svc.name), zap.String("version", svc.version), zap.String("endpoint", s.Endpoint(svc.name)), zap.String("log", s.logPath(svc.name)))
	r, err := spawn(s.cfg.ProcRoot, spec, s.logPath(svc.name))
	if err != nil {
		return Record{}, fmt.Errorf("start %s: %w", svc.name, err)
	}
	r.Service, r.Endpoint, r.Version = svc.name, s.Endpoint(svc.name), svc.version
	if err := writeRecord(s.pidPath(svc.name), r); err != nil {
		// Without a PID file nobody could stop it: stop it now. It is
		// the child we just started, leading its own process group.
		syscall.Kill(-r.PID, syscall.SIGKILL)
		return Record{}, fmt.Errorf("start %s: %w", svc.name, err)
	}
	return r, nil
}

// waitReady probes svc until it answers, its process exits, svc.ready
// passes or ctx ends. Failures carry the tail of the service's log.
func (s *Stack) waitReady(ctx context.Context, svc *service, r Record) error {
	begin := time.Now()
	deadline := begin.Add(svc.ready)
	delay := 200 * time.Millisecond
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = s.probe(pctx, svc)
		cancel()
		if last == nil {
			s.log.Info("ready", zap.String("service", svc.name), zap.Int("pid", r.PID), zap.String("endpoint", s.Endpoint(svc.name)), zap.Duration("took", time.Since(begin).Round(time.Millisecond)))
			return nil
		}
		if ok, status := alive(s.cfg.ProcRoot, r.PID); !ok {
			return fmt.Errorf("%s (pid %d) exited before it was ready (%s); tail of %s:\n%s", svc.name, r.PID, status, s.logPath(svc.name), tailFile(s.logPath(svc.name), 30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) not ready after %s: %v; tail of %s:\n%s", svc.name, r.PID, svc.ready, last, s.logPath(svc.name), tailFile(s.logPath(svc.name), 30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", svc.name, ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay += 200 * time.Millisecond
		}
	}
}

// stopAfterFailure stops a server Up started that never became ready, so
// the next Up starts it afresh. Problems are logged: the caller already
// returns the start-up error.
func (s *Stack) stopAfterFailure(ctx context.Context, svc *service, r Record) {
	if st, _, err := checkRecord(s.cfg.ProcRoot, r); err == nil && st == procOurs {
		if err := terminate(ctx, s.cfg.ProcRoot, r, svc.stop); err != nil {
			s.log.Warn("could not stop failed service", zap.String("service", svc.name), zap.Int("pid", r.PID), zap.Error(err))
			return
		}
	}
	os.Remove(s.pidPath(svc.name))
}

// Down stops the named services (all when names is empty, and then every
// companion first; see StartCompanion) that the stack started, newest first: SIGTERM to each process group, SIGKILL after the
// service's grace period. A PID file whose process is gone or now belongs
// to another program is removed without signalling anything. It blocks
// until the processes are gone. Errors name the services that may still
// run.
func (s *Stack) Down(ctx context.Context, names []string) error {
	svcs, err := s.selectServices(names)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("dev down: %w", err)
	}
	defer unlock()
	var errs []error
	if len(names) == 0 {
		errs = append(errs, s.stopCompanions(ctx)...) // before the servers they read from
	}
	for i := len(svcs) - 1; i >= 0; i-- {
		svc := svcs[i]
		r, st, why, err := s.recordState(svc)
		if err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", svc.name, err))
			continue
		}
		switch st {
		case stateStopped:
			s.log.Info("not running", zap.String("service", svc.name))
			continue
		case stateStale:
			s.log.Warn("removing stale pid file", zap.String("service", svc.name), zap.String("reason", why))
		case stateRunning:
			s.log.Info("stopping", zap.String("service", svc.name), zap.Int("pid", r.PID))
			if err := terminate(ctx, s.cfg.ProcRoot, r, svc.stop); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", svc.name, err))
				continue
			}
			s.log.Info("stopped", zap.String("service", svc.name), zap.Int("pid", r.PID))
		}
		if err := os.Remove(s.pidPath(svc.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("stop %s: %w", svc.name, err))
		}
	}
	return errors.Join(errs...)
}
