package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is what Status reports about a service.
type State string

// States a service can be in.
const (
	// StateRunning: our process is alive and answers a real request.
	StateRunning State = "running"
	// StateNotReady: our process is alive but does not answer (yet).
	StateNotReady State = "not ready"
	// StateStale: a PID file exists but its process has exited or the PID
	// now belongs to another program; Up and Down remove it.
	StateStale State = "stale pid"
	// StateStopped: no PID file.
	StateStopped State = "stopped"
)

// ServiceStatus is one row of `dev status`.
type ServiceStatus struct {
	Service  string
	State    State
	PID      int // 0 when not running
	Endpoint string
	Version  string
	// Detail explains a stale PID file, a failing probe, or a port taken
	// by another process while stopped.
	Detail string
}

// recordStates are what a PID file means before any probe.
const (
	stateStopped = iota
	stateRunning
	stateStale
)

// recordState reads svc's PID file and checks its process.
func (s *Stack) recordState(svc *service) (Record, int, string, error) {
	r, err := readRecord(s.pidPath(svc.name))
	if errors.Is(err, os.ErrNotExist) {
		return r, stateStopped, "", nil
	}
	if err != nil {
		return r, stateStale, err.Error(), nil
	}
	st, why, err := checkRecord(s.cfg.ProcRoot, r)
	if err != nil {
		return r, stateStopped, "", err
	}
	if st != procOurs {
		return r, stateStale, why, nil
	}
	return r, stateRunning, "", nil
}

// Status reports every service: whether its recorded process is alive and
// answers a real request (probed with a short timeout), its PID, endpoint
// and pinned version. It blocks for the probes, a few seconds at most. It
// starts or stops nothing.
func (s *Stack) Status(ctx context.Context) ([]ServiceStatus, error) {
	var out []ServiceStatus
	for _, name := range Services() {
		svc := s.services[name]
		row := ServiceStatus{Service: name, Endpoint: s.Endpoint(name), Version: svc.version}
		r, st, why, err := s.recordState(svc)
		if err != nil {
			return nil, fmt.Errorf("dev status: %s: %w", name, err)
		}
		switch st {
		case stateStopped:
			row.State = StateStopped
			if err := s.portsFree(svc); err != nil {
				row.Detail = err.Error()
			}
		case stateStale:
			row.State, row.PID, row.Detail = StateStale, r.PID, why
		case stateRunning:
			row.PID = r.PID
			if r.Version != "" {
				row.Version = r.Version // what was started, even if this binary pins another
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := s.probe(pctx, svc)
			cancel()
			if err != nil {
				row.State, row.Detail = StateNotReady, err.Error()
			} else {
				row.State = StateRunning
				if name == Elasticsearch {
					row.Detail = fmt.Sprintf("user %s, password %s, CA %s", ElasticsearchUser, ElasticsearchPassword, s.ElasticsearchCAFile())
				}
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// PortInUseError means a port a service needs is taken by a process the
// stack did not start.
type PortInUseError struct {
	Service string
	Port    int
	Role    string // which of the service's ports, e.g. "HTTPS, dev.kinesis_port+1"
	Key     string // config key that moves it, e.g. "dev.kinesis_port"
	Err     error
}

// Error names the port, the service and how to move it.
func (e *PortInUseError) Error() string {
	// The naming rules of internal/config: dev.kinesis_port is the flag
	// --dev.kinesis-port and the variable LEASEHOLD_DEV_KINESIS_PORT.
	env := "LEASEHOLD_" + strings.ToUpper(strings.ReplaceAll(e.Key, ".", "_"))
	flag := strings.ReplaceAll(e.Key, "_", "-")
	return fmt.Sprintf("%s: port %d (%s) on 127.0.0.1 is already in use by another process (see `ss -ltnp 'sport = :%d'`); stop it or move %s with %s (flag --%s=N, env %s=N)",
		e.Service, e.Port, e.Role, e.Port, e.Service, e.Key, flag, env)
}

// Unwrap returns the bind error (EADDRINUSE).
func (e *PortInUseError) Unwrap() error { return e.Err }

// portsFree checks that every port of svc can be bound on 127.0.0.1 now.
func (s *Stack) portsFree(svc *service) error {
	claims := append([]extraPort{{svc.port, svc.key}}, svc.extra...)
	var errs []error
	for _, c := range claims {
		if err := portFree(c.port); err != nil {
			var pe *PortInUseError
			if errors.As(err, &pe) {
				pe.Service, pe.Role, pe.Key = svc.name, c.role, svc.key
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// portFree binds 127.0.0.1:port and closes it again. A port taken on any
// address (0.0.0.0, [::] or 127.0.0.1) fails the bind with EADDRINUSE,
// reported as *PortInUseError; other failures are returned as they are.
func portFree(port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{Port: port, Err: err}
		}
		return fmt.Errorf("check port %d: %w", port, err)
	}
	return ln.Close()
}

// Env returns the shell lines `eval "$(leasehold dev env)"` needs: the
// SDK endpoint variables of each service, AWS_REGION=us-east-1 (the
// region tests and kinesis-local's streams use), test credentials when
// the environment has none (read with getenv),
// LEASEHOLD_TEST_OPENSEARCH_URL, and Elasticsearch's URL, user, password
// and CA file (LEASEHOLD_TEST_ELASTICSEARCH_*). Each line is
// `export NAME='value'`.
func (s *Stack) Env(getenv func(string) string) []string {
	vars := map[string]string{
		"AWS_ENDPOINT_URL_KINESIS":              s.Endpoint(Kinesis),
		"AWS_ENDPOINT_URL_DYNAMODB":             s.Endpoint(DynamoDB),
		"AWS_ENDPOINT_URL_S3":                   s.Endpoint(S3),
		"LEASEHOLD_TEST_OPENSEARCH_URL":         s.Endpoint(OpenSearch),
		"LEASEHOLD_TEST_ELASTICSEARCH_URL":      s.Endpoint(Elasticsearch),
		"LEASEHOLD_TEST_ELASTICSEARCH_USERNAME": ElasticsearchUser,
		"LEASEHOLD_TEST_ELASTICSEARCH_PASSWORD": ElasticsearchPassword,
		"LEASEHOLD_TEST_ELASTICSEARCH_CA_FILE":  s.ElasticsearchCAFile(),
		"AWS_REGION":                            "us-east-1",
	}
	if getenv("AWS_ACCESS_KEY_ID") == "" {
		vars["AWS_ACCESS_KEY_ID"] = "test"
		vars["AWS_SECRET_ACCESS_KEY"] = "test"
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, "export "+k+"="+shellQuote(vars[k]))
	}
	return lines
}

// shellQuote quotes v for a POSIX shell.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
