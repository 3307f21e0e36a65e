package searchbulk

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/leasehold/leasehold/internal/config"
)

// Conn is how to reach a search cluster with plain HTTP requests: for
// code that reads the events back with _search and aggregations (the
// explorer, benchmarks) against OpenSearch or Elasticsearch alike. The
// sinks build their own clients from the same settings.
//
// What differs between the two for such a reader (see docs/EVENTS.md,
// "Reading the events back"): Elasticsearch 8 is usually HTTPS with its
// own CA and always authenticated (basic or API key); properties is
// flat_object on OpenSearch and flattened on Elasticsearch. Query and
// aggregation bodies (range, term(s), bool, date_histogram, terms,
// cardinality, filters, composite) and their answers are the same.
type Conn struct {
	URL      string        `yaml:"url"`
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// APIKey is an Elasticsearch API key (base64 of id:key), sent as
	// "Authorization: ApiKey ..."; not combinable with Username.
	APIKey config.Secret `yaml:"api_key"`
	// CAFile is a PEM CA to trust besides the system pool.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify disables certificate checks (local clusters only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Client returns an HTTP client that verifies the cluster with CAFile
// (and the system pool). The error names ca_file. It does not block.
func (c Conn) Client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} // #nosec G402 -- opt-in for local clusters
	if c.CAFile != "" {
		pool, err := RootCAs(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// RootCAs returns the system pool (or an empty one where the system has
// none) with the PEM certificates of caFile added: what every client of a
// search cluster trusts when a CA file is configured. Its errors name the
// file but not the configuration key; callers add theirs.
func RootCAs(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Authorize sets r's Authorization header: an API key, or basic auth
// when Username is set, or nothing.
func (c Conn) Authorize(r *http.Request) {
	switch {
	case c.APIKey != "":
		r.Header.Set("Authorization", "ApiKey "+string(c.APIKey))
	case c.Username != "":
		r.SetBasicAuth(c.Username, string(c.Password))
	}
}
