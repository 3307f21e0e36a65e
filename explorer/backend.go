package explorer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/opensearch-project/opensearch-go/v4/signer"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// Backend is the data store the explorer reads, and writes its rollups to:
// the handful of REST calls it makes (_search, _stats, _bulk, _refresh,
// _delete_by_query, index templates, single documents). OpenSearch and
// Elasticsearch share these calls and their JSON, including the
// _doc_count field the rollups rely on; a backend supplies the transport
// (addresses, authentication) and the field mappings its store accepts.
// Implementations must be safe for concurrent use.
type Backend interface {
	// Do sends one request: method, a path with its query string
	// ("/idx/_search?x=y") and a JSON body (nil for none; NDJSON for
	// _bulk). It returns the status and body of the answer; only a
	// transport failure (no answer) is an error.
	Do(ctx context.Context, method, path string, body []byte) (status int, answer []byte, err error)
	// Mappings are the event fields' mappings, as the sink writes them,
	// for the rollup indices' template.
	Mappings() map[string]any
}

// OpenSearchOptions configures the connection to OpenSearch, with the
// same choices as the opensearch sink (processors/opensearch.Config):
// basic auth, a CA file or no verification for TLS, or AWS SigV4 for
// Amazon OpenSearch Service.
type OpenSearchOptions struct {
	URL                string // base URL, e.g. https://search-x.eu-west-1.es.amazonaws.com
	Username, Password string // basic auth (not with SigV4)
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system pool; InsecureSkipVerify turns verification off (a local
	// cluster with a self-signed certificate only).
	CAFile             string
	InsecureSkipVerify bool
	// SigV4 signs every request with credentials from the AWS SDK's
	// default chain (or AWSConfig): service "es" (Amazon OpenSearch
	// Service, the default) or "aoss" (Serverless), in SigV4Region
	// (default: the chain's).
	SigV4        bool
	SigV4Region  string
	SigV4Service string
	AWSConfig    *aws.Config
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// NewOpenSearch returns a Backend for an OpenSearch cluster. Errors name
// the option at fault (an unreadable CA file, basic auth with SigV4, a
// failing AWS credential chain).
func NewOpenSearch(ctx context.Context, o OpenSearchOptions) (Backend, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("explore.opensearch_url: %q is not an http:// or https:// URL", o.URL)
	}
	if o.SigV4 && o.Username != "" {
		return nil, errors.New("explore.opensearch_username: not with explore.opensearch_sigv4 (SigV4 signs with AWS credentials)")
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32 // a page issues its calls at once, each one or a few searches
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify} // #nosec G402 -- opt-in for local clusters
	if o.CAFile != "" {
		pool, err := searchbulk.RootCAs(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("explore.opensearch_ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	b := &openSearch{base: strings.TrimRight(o.URL, "/"), user: o.Username, password: o.Password,
		http: &http.Client{Transport: tr, Timeout: o.Timeout}}
	if o.SigV4 {
		cfg := o.AWSConfig
		if cfg == nil {
			var opts []func(*awsconfig.LoadOptions) error
			if o.SigV4Region != "" {
				opts = append(opts, awsconfig.WithRegion(o.SigV4Region))
			}
			loaded, err := awsconf.Load(ctx, opts...)
			if err != nil {
				return nil, fmt.Errorf("explore.opensearch_sigv4: %w", err)
			}
			cfg = &loaded
		} else if o.SigV4Region != "" {
			cp := cfg.Copy()
			cp.Region = o.SigV4Region
			cfg = &cp
		}
		service := o.SigV4Service
		if service == "" {
			service = "es"
		}
		if service != "es" && service != "aoss" {
			return nil, fmt.Errorf("explore.opensearch_sigv4_service: %q is not es or aoss", service)
		}
		sg, err := awsv2.NewSignerWithService(*cfg, service)
		if err != nil {
			return nil, fmt.Errorf("explore.opensearch_sigv4: %w", err)
		}
		b.signer = sg
	}
	return b, nil
}

// openSearch is the Backend for OpenSearch over HTTP.
type openSearch struct {
	base           string
	user, password string
	signer         signer.Signer // nil without SigV4
	http           *http.Client
}

func (b *openSearch) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
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
	if b.user != "" {
		req.SetBasicAuth(b.user, b.password)
	}
	if b.signer != nil {
		if err := b.signer.SignRequest(req); err != nil {
			return 0, nil, fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

func (b *openSearch) Mappings() map[string]any { return opensearch.Mappings() }
