package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// The credentials of the local Elasticsearch: a file-realm superuser that
// `dev up` adds before the first start. They protect nothing (the server
// listens on 127.0.0.1 only) and are printed by `dev env` and `dev
// status`, like the AWS test credentials.
const (
	ElasticsearchUser     = "leasehold"
	ElasticsearchPassword = "leasehold-dev"
)

// elasticsearchDist is Elasticsearch's integ-test zip: core plus the
// x-pack-core and x-pack-security modules, nothing else (no ILM, no data
// streams, no analysis-common). Security is on as the zip ships it: at the
// first start Elasticsearch auto-configures itself (the "security
// auto-configuration" block it appends to elasticsearch.yml): HTTPS with a
// CA it generates (config/certs/http_ca.crt), TLS between nodes, and
// authentication required on every request. It does not set a password
// for the built-in elastic user when no terminal is attached, and its
// native realm and API keys cannot work here: both live in the .security
// index, whose mappings use analysis-common's pattern_capture filter
// ("Unknown filter type [pattern_capture]"). So `dev up` adds a
// file-realm superuser (ElasticsearchUser) with the zip's own
// bin/elasticsearch-users, and clients trust the generated CA.
//
// Java: 8.19 needs 17 or later; it was run here on 17, and bundles 24 in
// its full distribution.
var elasticsearchDist = searchDist{
	service:    Elasticsearch,
	product:    "Elasticsearch",
	version:    ElasticsearchVersion,
	path:       elasticsearchPath,
	sha512:     elasticsearchSHA512,
	envPrefix:  "ES",
	minJava:    17,
	maxJava:    24,
	keepConfig: true,
	prepare:    prepareElasticsearch,
}

// prepareElasticsearch adds the file-realm user unless config/users has
// it. bin/elasticsearch-users writes the bcrypt hash itself; it runs
// before the server, so the server's own files get chowned after it.
func prepareElasticsearch(ctx context.Context, s *Stack, home string, java javaHome, conf string) error {
	b, err := os.ReadFile(filepath.Join(conf, "users"))
	if err == nil && hasFileUser(string(b), ElasticsearchUser) {
		return nil
	}
	s.log.Info("adding the elasticsearch file-realm user", zap.String("user", ElasticsearchUser))
	cmd := exec.CommandContext(ctx, filepath.Join(home, "bin", "elasticsearch-users"),
		"useradd", ElasticsearchUser, "-p", ElasticsearchPassword, "-r", "superuser")
	cmd.Env = append(baseEnv(conf), "ES_JAVA_HOME="+java.dir, "ES_PATH_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("elasticsearch-users useradd %s: %w: %s", ElasticsearchUser, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hasFileUser reports whether a file-realm users file (name:hash lines)
// has name.
func hasFileUser(users, name string) bool {
	for _, l := range strings.Split(users, "\n") {
		if u, _, ok := strings.Cut(l, ":"); ok && u == name {
			return true
		}
	}
	return false
}

// ElasticsearchCAFile returns the CA certificate (PEM) Elasticsearch
// generated at its first start for its HTTPS port; it exists once the
// service has started once. It does not block.
func (s *Stack) ElasticsearchCAFile() string {
	return filepath.Join(s.searchState(elasticsearchDist), "config", "certs", "http_ca.crt")
}

// elasticsearchClient returns an HTTP client that trusts the local
// Elasticsearch's CA, or an error while the CA does not exist yet (the
// server writes it during its first start).
func (s *Stack) elasticsearchClient() (*http.Client, error) {
	pem, err := os.ReadFile(s.ElasticsearchCAFile())
	if err != nil {
		return nil, fmt.Errorf("elasticsearch CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("elasticsearch CA: %s holds no PEM certificate", s.ElasticsearchCAFile())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}
