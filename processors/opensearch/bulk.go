package opensearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	osclient "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// Sentinel errors. Errors that must not be retried also wrap
// processors.ErrPermanent; processors.IsPermanent decides.
var (
	// ErrDocumentTooLarge marks a document that cannot be sent: with its
	// action line it exceeds flush_bytes, or the cluster answered 413 to a
	// request holding it alone. It is dead-lettered.
	ErrDocumentTooLarge = errors.New("opensearch: document too large")
	// ErrNotParsed marks a message that reached the sink without a parsed
	// event (no parser processor ran). It is dead-lettered.
	ErrNotParsed = errors.New("opensearch: message has no parsed event")
	// ErrRejected marks a whole request the cluster refused for a reason
	// retrying cannot fix (400, 404, ...): the sink is misconfigured or
	// broken, and the shard stops without a checkpoint.
	ErrRejected = errors.New("opensearch: request rejected")
	// ErrRetriesExhausted is returned by a shard sink once max_retries
	// attempts of one bulk request failed; the shard stops without a
	// checkpoint and is replayed.
	ErrRetriesExhausted = errors.New("opensearch: retries exhausted")
	// ErrStopped is returned by a shard sink used after Close or after the
	// context given to Open ended.
	ErrStopped = errors.New("opensearch: shard sink stopped")
	// ErrCannotWrite marks a failure that means the cluster refuses writes
	// until an operator acts (searchbulk.CannotWrite: shard limit reached,
	// index missing with auto-create off, index closed, no write index
	// behind an alias, a read-only block, refused credentials). The sink
	// retries it like a throttled request — the shard waits, nothing is
	// dead-lettered — logs an Error, and reports the shard in
	// Sink.State().CannotWrite, which makes the worker not ready.
	ErrCannotWrite = errors.New("opensearch: the cluster cannot take these writes now")
)

// errTooLarge marks a 413 response to a request: split it and retry.
var errTooLarge = errors.New("opensearch: request entity too large (413)")

// ItemError is a bulk item's failure as the cluster reported it. The
// dead-letter record of a permanently failed document carries it (wrapped
// with processors.ErrPermanent).
type ItemError struct {
	Index  string // the document's index
	ID     string // the document's _id
	Status int    // the item's HTTP status, e.g. 400 or 429
	Type   string // e.g. mapper_parsing_exception
	Reason string
	// CausedBy is the nested cause's "type: reason", if any.
	CausedBy string
}

// Error returns "opensearch: index I id D: status 400 mapper_parsing_exception: reason (caused by: ...)".
func (e *ItemError) Error() string {
	s := fmt.Sprintf("opensearch: index %s id %s: status %d %s: %s", e.Index, e.ID, e.Status, e.Type, e.Reason)
	if e.CausedBy != "" {
		s += " (caused by: " + e.CausedBy + ")"
	}
	return s
}

// RequestError is the failure of a whole request (a bulk request or the
// template installation): a transport error (Status 0) or a non-2xx
// answer. Flush and Write return it (wrapped) when it stops a shard sink.
type RequestError struct {
	Op     string // "bulk" or "install index template NAME"
	Status int    // HTTP status; 0 when no answer arrived
	Err    error
}

// Error returns "OP: status N: cause" or "OP: cause".
func (e *RequestError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: status %d: %v", e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// requestError classifies the failure of a whole request op with the
// given HTTP status (0 if none) with searchbulk.Classify: the result wraps
// errTooLarge for a 413, ErrCannotWrite when the cluster refuses writes
// until an operator acts, and processors.ErrPermanent and ErrRejected when
// the request itself is wrong. A failed certificate verification is
// permanent too: it is a configuration error (tls.ca_file), not a passing
// fault.
func requestError(op string, status int, err error) error {
	re := &RequestError{Op: op, Status: status, Err: err}
	var errType, reason string
	var se *osclient.StructError
	if errors.As(err, &se) {
		errType, reason = se.Err.Type, se.Err.Reason
	}
	var cv *tls.CertificateVerificationError
	switch c := searchbulk.Classify(status, errType, reason); {
	case errors.As(err, &cv):
		return processors.Permanent(fmt.Errorf("%w: %w", ErrRejected, re))
	case c == searchbulk.TooLarge:
		return fmt.Errorf("%w: %w", errTooLarge, re)
	case c == searchbulk.CannotWrite:
		return fmt.Errorf("%w: %w", ErrCannotWrite, re)
	case c == searchbulk.BadDocument:
		return processors.Permanent(fmt.Errorf("%w: %w", ErrRejected, re))
	}
	return re
}

// itemErr returns the error for a failed item: permanent for a bad
// document (searchbulk.BadDocument, or a 413 for the item alone), wrapping
// ErrCannotWrite when the cluster refuses it until an operator acts, and
// a plain retryable *ItemError otherwise.
func itemErr(index, id string, it *bulkItem) error {
	e := &ItemError{Index: index, ID: id, Status: it.Status}
	if it.Error != nil {
		e.Type, e.Reason = it.Error.Type, it.Error.Reason
		if c := it.Error.CausedBy; c != nil {
			e.CausedBy = c.Type + ": " + c.Reason
		}
	}
	switch searchbulk.Classify(e.Status, e.Type, e.Reason) {
	case searchbulk.Retry:
		return e
	case searchbulk.CannotWrite:
		return fmt.Errorf("%w: %w", ErrCannotWrite, e)
	}
	return processors.Permanent(e)
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

// bulk sends one request of n items and returns the item results in
// order. A whole-request failure returns a classified error (see
// requestError); a 200 response whose item count differs from n is
// retried as a whole.
func (s *Sink) bulk(ctx context.Context, body []byte, n int) ([]*bulkItem, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	s.stats.requests.Add(1)
	s.stats.bytes.Add(int64(len(body)))
	items, err := s.doBulk(ctx, body, n)
	if err != nil {
		s.stats.requestErrors.Add(1)
	}
	return items, err
}

func (s *Sink) doBulk(ctx context.Context, body []byte, n int) ([]*bulkItem, error) {
	var out bulkResponse
	resp, err := osclient.Do(ctx, s.client, http.MethodPost, opensearchapi.BulkReq{
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
	items := make([]*bulkItem, n)
	for i, it := range out.Items {
		if it.Index == nil {
			return nil, requestError("bulk", 0, fmt.Errorf("response item %d is not an index result", i))
		}
		items[i] = it.Index
	}
	return items, nil
}

// appendItem appends the action line and the document of one bulk item
// (searchbulk.AppendIndex; validIndexName excludes characters JSON would
// escape from index names).
func appendItem(dst, index []byte, id string, e *event.Event) []byte {
	return searchbulk.AppendIndex(dst, index, id, e)
}

// docID is the document's _id: the event id, or, when a parser left it
// empty, "<stream>-<shard>-<sequence>-<sub>" from the source record, which
// a replay reproduces as well. Called by Write only.
func (ss *shardSink) docID(m *processors.Message) string {
	if m.Event.EventID != "" {
		return m.Event.EventID
	}
	stream := m.Record.StreamName
	if stream == "" {
		stream = ss.shard.StreamName
	}
	ss.scratch = fallbackID(ss.scratch[:0], &m.Record, stream)
	return string(ss.scratch)
}

func fallbackID(dst []byte, r *worker.Record, stream string) []byte {
	dst = append(dst, stream...)
	dst = append(dst, '-')
	dst = append(dst, r.ShardID...)
	dst = append(dst, '-')
	dst = append(dst, r.SequenceNumber...)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, r.SubSequenceNumber, 10)
}

// appendJSONString appends s as a JSON string, replacing invalid UTF-8
// with U+FFFD as encoding/json does.
func appendJSONString(dst []byte, s string) []byte { return event.AppendJSONString(dst, s) }
