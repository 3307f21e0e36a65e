package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// errNotElasticsearch marks the client's refusal of a server that does
// not answer as Elasticsearch does (no X-Elastic-Product header):
// OpenSearch, or something else at the URL. It is permanent.
var errNotElasticsearch = errors.New("elasticsearch: the server is not Elasticsearch (the official client refuses it; for OpenSearch use the opensearch sink)")

// cluster implements searchbulk.Cluster and searchbulk.Lifecycle on the
// official client. Safe for concurrent use.
type cluster struct {
	client  *es.Client
	timeout time.Duration                   // bounds each setup and retention request
	ready   func(ctx context.Context) error // the sink's Setup.Ready
}

// bulkFilter trims the response to what bulkResponse reads.
var bulkFilter = []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason", "items.*.error.caused_by.type", "items.*.error.caused_by.reason"}

type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []struct {
		Index *struct {
			Status int `json:"status"`
			Error  *struct {
				Type     string `json:"type"`
				Reason   string `json:"reason"`
				CausedBy *struct {
					Type   string `json:"type"`
					Reason string `json:"reason"`
				} `json:"caused_by"`
			} `json:"error"`
		} `json:"index"`
	} `json:"items"`
}

// Bulk sends one request of n items (see searchbulk.Cluster).
func (c *cluster) Bulk(ctx context.Context, body []byte, n int) ([]searchbulk.ItemResult, error) {
	b, err := c.do(ctx, "bulk", esapi.BulkRequest{Body: bytes.NewReader(body), FilterPath: bulkFilter})
	if err != nil {
		return nil, err
	}
	var out bulkResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, searchbulk.RequestFailure(&searchbulk.RequestError{Op: "bulk", Err: fmt.Errorf("decode response: %w", err)})
	}
	if len(out.Items) != n {
		return nil, searchbulk.RequestFailure(&searchbulk.RequestError{Op: "bulk", Err: fmt.Errorf("response has %d items for %d sent", len(out.Items), n)})
	}
	items := make([]searchbulk.ItemResult, n)
	for i, it := range out.Items {
		if it.Index == nil {
			return nil, searchbulk.RequestFailure(&searchbulk.RequestError{Op: "bulk", Err: fmt.Errorf("response item %d is not an index result", i)})
		}
		r := searchbulk.ItemResult{Status: it.Index.Status}
		if e := it.Index.Error; e != nil {
			r.Type, r.Reason = e.Type, e.Reason
			if e.CausedBy != nil {
				r.CausedBy = e.CausedBy.Type + ": " + e.CausedBy.Reason
			}
		}
		items[i] = r
	}
	return items, nil
}

// Ready runs the sink's setup (template, lifecycle) until it succeeds.
func (c *cluster) Ready(ctx context.Context) error { return c.ready(ctx) }

// LifecycleAPI asks GET _ilm/status: 200 means ILM runs. A cluster
// without the x-pack-ilm module (the integ-test zip) answers 405, 404 or
// 400 for the path, which another handler claims.
func (c *cluster) LifecycleAPI(ctx context.Context) (string, bool, error) {
	_, err := c.setupCall(ctx, "ILM status", esapi.ILMGetStatusRequest{})
	var re *searchbulk.RequestError
	switch {
	case err == nil:
		return "ILM", true, nil
	case errors.As(err, &re) && (re.Status == http.StatusNotFound || re.Status == http.StatusMethodNotAllowed || re.Status == http.StatusBadRequest):
		return "ILM", false, nil
	}
	return "ILM", false, err
}

// PutPolicy installs an ILM policy with a hot phase and a delete phase at
// days. With daily names ending in -yyyy.MM.dd, PolicySettings has ILM
// read each index's age from its name (parse_origination_date), so the
// age is the event day's, not the day a backfill created the index.
func (c *cluster) PutPolicy(ctx context.Context, name string, days int, _ searchbulk.IndexPattern) error {
	body := fmt.Sprintf(`{"policy":{"_meta":{"managed_by":"leasehold"},"phases":{"hot":{"min_age":"0ms","actions":{}},"delete":{"min_age":"%dd","actions":{"delete":{}}}}}}`, days)
	_, err := c.setupCall(ctx, "install ILM policy "+name, esapi.ILMPutLifecycleRequest{Policy: name, Body: strings.NewReader(body)})
	return err
}

// PolicySettings attaches the ILM policy through the template.
func (c *cluster) PolicySettings(name string, p searchbulk.IndexPattern) map[string]any {
	lc := map[string]any{"name": name}
	if p.DatedSuffix() {
		lc["parse_origination_date"] = true
	}
	return map[string]any{"lifecycle": lc}
}

// PutTemplate installs the composable index template.
func (c *cluster) PutTemplate(ctx context.Context, name string, body []byte) error {
	_, err := c.setupCall(ctx, "install index template "+name, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: bytes.NewReader(body)})
	return err
}

// ListIndices lists the indices matching wildcard, open and closed.
func (c *cluster) ListIndices(ctx context.Context, wildcard string) ([]string, error) {
	b, err := c.setupCall(ctx, "list indices "+wildcard, esapi.CatIndicesRequest{
		Index: []string{wildcard}, Format: "json", H: []string{"index"}, ExpandWildcards: "open,closed",
	})
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("list indices %s: %w", wildcard, err)
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Index
	}
	return names, nil
}

// DeleteIndex deletes one index by name; 404 is success (another worker
// deleted it).
func (c *cluster) DeleteIndex(ctx context.Context, name string) error {
	_, err := c.setupCall(ctx, "delete index "+name, esapi.IndicesDeleteRequest{Index: []string{name}})
	var re *searchbulk.RequestError
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// setupCall is do bounded by the request timeout.
func (c *cluster) setupCall(ctx context.Context, op string, req esapi.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.do(ctx, op, req)
}

// do performs req and returns the body of a 2xx answer, or the failure as
// searchbulk.RequestFailure classified it.
func (c *cluster) do(ctx context.Context, op string, req esapi.Request) ([]byte, error) {
	res, err := req.Do(ctx, c.client)
	if err != nil {
		if IsNotElasticsearch(err) {
			return nil, processors.Permanent(fmt.Errorf("%s: %w: %w", op, errNotElasticsearch, err))
		}
		return nil, searchbulk.RequestFailure(&searchbulk.RequestError{Op: op, Err: err})
	}
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	if !res.IsError() {
		if rerr != nil {
			return nil, searchbulk.RequestFailure(&searchbulk.RequestError{Op: op, Err: fmt.Errorf("read response: %w", rerr)})
		}
		return b, nil
	}
	re := &searchbulk.RequestError{Op: op, Status: res.StatusCode}
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Type != "" {
		re.Type, re.Reason = e.Error.Type, e.Error.Reason
		re.Err = errors.New(e.Error.Type + ": " + e.Error.Reason)
	} else {
		re.Err = errors.New(strconv.Quote(truncate(string(b), 200)))
	}
	return nil, searchbulk.RequestFailure(re)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
