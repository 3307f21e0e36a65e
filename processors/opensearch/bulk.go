package opensearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	osclient "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/leasehold/leasehold/processors/searchbulk"
)

// Sentinel errors: the bulk engine's (processors/searchbulk), which both
// search sinks share, so that errors.Is reads the same for either. Errors
// that must not be retried also wrap processors.ErrPermanent;
// processors.IsPermanent decides.
var (
	// ErrDocumentTooLarge marks a document that cannot be sent: with its
	// action line it exceeds flush_bytes, or the cluster answered 413 to a
	// request holding it alone. It is dead-lettered.
	ErrDocumentTooLarge = searchbulk.ErrDocumentTooLarge
	// ErrNotParsed marks a message that reached the sink without a parsed
	// event (no parser processor ran). It is dead-lettered.
	ErrNotParsed = searchbulk.ErrNotParsed
	// ErrRejected marks a whole request the cluster refused for a reason
	// retrying cannot fix: the sink is misconfigured or broken, and the
	// shard stops without a checkpoint.
	ErrRejected = searchbulk.ErrRejected
	// ErrRetriesExhausted is returned by a shard sink once max_retries
	// attempts of one bulk request failed; the shard stops without a
	// checkpoint and is replayed.
	ErrRetriesExhausted = searchbulk.ErrRetriesExhausted
	// ErrStopped is returned by a shard sink used after Close or after the
	// context given to Open ended.
	ErrStopped = searchbulk.ErrStopped
	// ErrCannotWrite marks a failure that means the cluster refuses writes
	// until an operator acts (searchbulk.CannotWrite: shard limit reached,
	// index missing with auto-create off, index closed, no write index
	// behind an alias, a read-only block, refused credentials). The sink
	// retries it like a throttled request — the shard waits, nothing is
	// dead-lettered — logs an Error, and reports the shard in
	// Sink.State().CannotWrite, which makes the worker not ready.
	ErrCannotWrite = searchbulk.ErrCannotWrite
)

// ItemError is a bulk item's failure as the cluster reported it. The
// dead-letter record of a permanently failed document carries it (wrapped
// with processors.ErrPermanent).
type ItemError = searchbulk.ItemError

// RequestError is the failure of a whole request (a bulk request or the
// template installation): a transport error (Status 0) or a non-2xx
// answer. Flush and Write return it (wrapped) when it stops a shard sink.
type RequestError = searchbulk.RequestError

// requestError classifies the failure of a whole request op with the
// given HTTP status (0 if none) with searchbulk.RequestFailure, reading
// the cluster's error type and reason from opensearch-go's error.
func requestError(op string, status int, err error) error {
	re := &RequestError{Op: op, Status: status, Err: err}
	var se *osclient.StructError
	if errors.As(err, &se) {
		re.Type, re.Reason = se.Err.Type, se.Err.Reason
	}
	return searchbulk.RequestFailure(re)
}

// bulkResponse is the part of a _bulk response the sink reads; the request
// asks for only these fields (filter_path).
type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []struct {
		Index *bulkItem `json:"index"`
	} `json:"items"`
}

type bulkItem struct {
	Status int `json:"status"`
	Error  *struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	} `json:"error"`
}

// bulkFilter trims the response to what bulkResponse reads: a response of
// 1,000 successes shrinks from ~200 KB to ~25 KB.
var bulkFilter = []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason", "items.*.error.caused_by.type", "items.*.error.caused_by.reason"}

// cluster is the sink's side of searchbulk.Cluster: bulk requests through
// opensearch-go, and the index template (and retention) before the first.
type cluster struct{ s *Sink }

// Bulk sends one request of n items and returns the item results in
// order. A whole-request failure returns a classified error (see
// requestError); a 200 response whose item count differs from n is
// retried as a whole.
func (c cluster) Bulk(ctx context.Context, body []byte, n int) ([]searchbulk.ItemResult, error) {
	var out bulkResponse
	resp, err := osclient.Do(ctx, c.s.client, http.MethodPost, opensearchapi.BulkReq{
		Body:   bytes.NewReader(body),
		Params: opensearchapi.BulkParams{FilterPath: bulkFilter},
	}, &out)
	switch {
	case resp == nil:
		return nil, requestError("bulk", 0, err)
	case resp.IsError():
		return nil, requestError("bulk", resp.StatusCode, osclient.ParseError(resp))
	case err != nil: // a 2xx whose body could not be read or decoded
		return nil, requestError("bulk", 0, err)
	case len(out.Items) != n:
		return nil, requestError("bulk", 0, fmt.Errorf("response has %d items for %d sent", len(out.Items), n))
	}
	items := make([]searchbulk.ItemResult, n)
	for i, it := range out.Items {
		if it.Index == nil {
			return nil, requestError("bulk", 0, fmt.Errorf("response item %d is not an index result", i))
		}
		r := searchbulk.ItemResult{Status: it.Index.Status}
		if e := it.Index.Error; e != nil {
			r.Type, r.Reason = e.Type, e.Reason
			if cb := e.CausedBy; cb != nil {
				r.CausedBy = cb.Type + ": " + cb.Reason
			}
		}
		items[i] = r
	}
	return items, nil
}

// Ready installs the index template (and retention) before the first
// bulk request.
func (c cluster) Ready(ctx context.Context) error { return c.s.ensureTemplate(ctx) }
