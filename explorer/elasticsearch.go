package explorer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/leasehold/leasehold/processors/elasticsearch"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// ElasticsearchOptions configures the connection to Elasticsearch 8 with
// the elasticsearch sink's choices: a URL or an Elastic Cloud ID, an API
// key or basic auth, a CA file for the cluster's certificate.
type ElasticsearchOptions struct {
	// Conn is the cluster's base URL (https://127.0.0.1:9200), Username
	// and Password or APIKey, CAFile (trusted besides the system pool; a
	// self-managed Elasticsearch 8 writes its http_ca.crt at first start)
	// and InsecureSkipVerify (a local cluster only).
	searchbulk.Conn
	// CloudID is an Elastic Cloud deployment's Cloud ID, instead of URL.
	CloudID string
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// NewElasticsearch returns a Backend for an Elasticsearch 8 cluster, on
// the official client built as the elasticsearch sink builds it. It does
// not touch the network; the first answer that does not come from
// Elasticsearch (an OpenSearch at the URL) fails every call with an error
// that says so. Errors name the explore key at fault.
func NewElasticsearch(o ElasticsearchOptions) (Backend, error) {
	switch {
	case o.URL == "" && o.CloudID == "":
		return nil, errors.New("explore.elasticsearch_url: required with explore.backend elasticsearch (or explore.elasticsearch_cloud_id)")
	case o.URL != "" && o.CloudID != "":
		return nil, errors.New("explore.elasticsearch_url and explore.elasticsearch_cloud_id: set one of them")
	case o.URL != "" && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://"):
		return nil, fmt.Errorf("explore.elasticsearch_url: %q is not an http:// or https:// URL", o.URL)
	case o.APIKey != "" && o.Username != "":
		return nil, errors.New("explore.elasticsearch_api_key and explore.elasticsearch_username: use one kind of authentication")
	case o.Password != "" && o.Username == "":
		return nil, errors.New("explore.elasticsearch_password: set without explore.elasticsearch_username")
	}
	// Read the CA file here, where the error can name the explore key
	// (the client reads it again).
	if _, err := o.Conn.Client(); err != nil {
		return nil, fmt.Errorf("explore.elasticsearch_%w", err) // "ca_file: ..."
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	cfg := elasticsearch.Config{URL: strings.TrimRight(o.URL, "/"), CloudID: o.CloudID, APIKey: o.APIKey, Username: o.Username, Password: o.Password,
		TLS: elasticsearch.TLSConfig{CAFile: o.CAFile, InsecureSkipVerify: o.InsecureSkipVerify}}
	client, err := elasticsearch.NewClient(cfg)
	if err != nil {
		if o.CloudID != "" {
			return nil, fmt.Errorf("explore.elasticsearch_cloud_id: %w", err)
		}
		return nil, fmt.Errorf("explore.elasticsearch_url: %w", err)
	}
	return &elasticBackend{client: client, timeout: o.Timeout}, nil
}

// elasticBackend is the Backend for Elasticsearch on the official
// client's transport (its connection pool, auth and product check).
type elasticBackend struct {
	client  *es.Client
	timeout time.Duration
}

// errNotElasticsearch is the answer of every call when the server at the
// configured address is not Elasticsearch.
var errNotElasticsearch = errors.New("the server at explore.elasticsearch_url is not Elasticsearch (for OpenSearch set explore.backend: opensearch)")

func (b *elasticBackend) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		ct := "application/json"
		if strings.Contains(path, "/_bulk") {
			ct = "application/x-ndjson"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := b.client.Perform(req)
	if err != nil {
		if elasticsearch.IsNotElasticsearch(err) {
			return 0, nil, errNotElasticsearch
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

func (b *elasticBackend) Mappings() map[string]any {
	return searchbulk.Mappings(searchbulk.Elasticsearch)
}
