package integration

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// The local Elasticsearch is secured as its zip ships it: HTTPS with the
// CA it generated, no answer without credentials, the stack's file-realm
// user accepted, listening on 127.0.0.1 only; the official client talks
// to it, and refuses OpenSearch.
func TestStackElasticsearch(t *testing.T) {
	e := testenv.Require(t, "elasticsearch", "opensearch")
	ctx := testenv.Context(t, time.Minute)
	u, err := url.Parse(e.Elasticsearch)
	if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
		t.Fatalf("endpoint %q: want https on 127.0.0.1", e.Elasticsearch)
	}
	// Not on another address of this host (it binds 127.0.0.1 only).
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", u.Port()), time.Second); err == nil {
		c.Close()
		t.Errorf("Elasticsearch answers on 127.0.0.2:%s; it must listen on 127.0.0.1 only", u.Port())
	}

	// Plain HTTP and an unknown CA are refused.
	if resp, err := http.Get("http://" + u.Host + "/_cluster/health"); err == nil {
		resp.Body.Close()
		t.Errorf("plain HTTP answered %s; want HTTPS only", resp.Status)
	}
	if resp, err := http.Get(e.Elasticsearch + "/_cluster/health"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the stack's CA got %s", resp.Status)
	}

	pem, err := os.ReadFile(e.ES.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := es.NewClient(es.Config{Addresses: []string{e.Elasticsearch}, CACert: pem})
	if err != nil {
		t.Fatal(err)
	}
	res, err := anon.Cluster.Health(anon.Cluster.Health.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %s, want 401", res.Status())
	}

	c, err := es.NewClient(es.Config{Addresses: []string{e.Elasticsearch}, CACert: pem, Username: e.ES.Username, Password: e.ES.Password})
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.Cluster.Health(c.Cluster.Health.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("with the stack's user: %s, product %q", res.Status(), res.Header.Get("X-Elastic-Product"))
	}

	// The official client refuses OpenSearch: hence two sinks.
	osc, err := es.NewClient(es.Config{Addresses: []string{e.OpenSearch}, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = osc.Cluster.Health(osc.Cluster.Health.WithContext(ctx))
	if err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("the Elasticsearch client against OpenSearch: %v, want its product check to refuse", err)
	}
}
