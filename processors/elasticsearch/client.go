package elasticsearch

import (
	"errors"
	"fmt"
	"strings"

	es "github.com/elastic/go-elasticsearch/v8"
)

// NewClient returns the official client built from c's connection options
// (url, urls or cloud_id; api_key or username and password; tls) exactly
// as the sink builds its own, for programs that read the indices the sink
// writes, such as the explorer. c's other options are ignored. The
// client does not retry (the caller decides) and, like the sink's,
// refuses a server that does not say it is Elasticsearch on its first
// answer.
//
// It validates the connection options and reads tls.ca_file; errors name
// the option and wrap ErrConfig. It does not touch the network.
func NewClient(c Config) (*es.Client, error) {
	conn := Config{URL: c.URL, URLs: c.URLs, CloudID: c.CloudID, APIKey: c.APIKey, Username: c.Username, Password: c.Password, TLS: c.TLS}
	if err := conn.Validate(); err != nil {
		return nil, err
	}
	esCfg, err := clientConfig(conn)
	if err != nil {
		return nil, err
	}
	client, err := es.NewClient(esCfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err) // a Cloud ID that does not decode
	}
	return client, nil
}

// IsNotElasticsearch reports whether err is the client's refusal of a
// server that does not say it is Elasticsearch (OpenSearch, or a proxy's
// own page): a wrong URL, not a passing failure.
func IsNotElasticsearch(err error) bool {
	return errors.Is(err, errNotElasticsearch) || err != nil && strings.Contains(err.Error(), "server is not Elasticsearch")
}
