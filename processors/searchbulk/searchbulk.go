// Package searchbulk is what the search sinks share that speak the
// OpenSearch / Elasticsearch _bulk API — processors/opensearch on
// opensearch-go and processors/elasticsearch on go-elasticsearch — so that
// both treat every document and every answer alike:
//
//   - how a bulk item (one index action and its document) is encoded
//     (AppendIndex, DocID) and which index it goes to (IndexPattern);
//   - how a failed item or request is classified (Classify,
//     RequestFailure);
//   - the Engine: per-shard buffering, bulk requests in order, retries,
//     dead letters and the durable position, over a small Cluster
//     interface each sink implements on its client;
//   - the index template's mappings and body (Mappings, Template);
//   - retention (Retention, Setup, Pruner): the cluster's lifecycle
//     management where it has it, else deleting expired indices by name;
//   - Conn, what a reader of either cluster needs.
//
// # Classification
//
// Classify is the one place that decides what an answer means. There are
// four outcomes, and only one of them ever dead-letters a document:
//
//   - Retry: the cluster is busy or unreachable for a moment (429, 408,
//     5xx, a dropped connection). Back off and resend; the shard waits.
//   - CannotWrite: the cluster refuses every write of this kind until an
//     operator acts — it is at its shard limit, the index is missing while
//     auto-creation is off, the index is closed, the alias has no write
//     index, a read-only block is set, the credentials are refused. The
//     document is fine: back off and resend like Retry, and tell the
//     operator (an Error log, a metric, readiness red). Dead-lettering
//     here would move the next legitimate day's documents to the
//     dead-letter store because the cluster was full.
//   - TooLarge: 413. Split the request; a document refused alone is
//     dead-lettered.
//   - BadDocument: the document itself is wrong (a mapping conflict, an
//     id over 512 bytes). Dead-letter it with the cluster's reason. For a
//     whole request it means the request is malformed: the sink is broken.
package searchbulk

import (
	"net/http"
	"strings"

	"github.com/leasehold/leasehold/event"
)

// Class is what a search sink does about a failed bulk item or request.
type Class int

// The classes; see the package documentation.
const (
	Retry Class = iota + 1
	CannotWrite
	TooLarge
	BadDocument
)

// String returns "retry", "cannot_write", "too_large" or "bad_document".
func (c Class) String() string {
	switch c {
	case Retry:
		return "retry"
	case CannotWrite:
		return "cannot_write"
	case TooLarge:
		return "too_large"
	case BadDocument:
		return "bad_document"
	}
	return "unknown"
}

// Classify returns the class of a failed item or request from its HTTP
// status (0 when no answer arrived: connection refused or dropped, a
// timeout) and, when the cluster sent one, the error's type and reason.
// OpenSearch 2 and Elasticsearch 8 report these conditions alike:
//
//	cluster at its shard limit   400 validation_exception "… would add [2] total shards, but this cluster currently has [1000]/[1000] maximum shards open"
//	missing index, no auto-create 404 index_not_found_exception
//	closed index                 400 index_closed_exception
//	alias without a write index  400 illegal_argument_exception "no write index is defined for alias […]"
//	read-only / write blocks     403 or 429 cluster_block_exception "… index read-only …" (503: no master yet, which is Retry)
//	refused credentials          401, 403
func Classify(status int, errType, reason string) Class {
	switch errType {
	case "cluster_block_exception":
		if status == http.StatusServiceUnavailable {
			return Retry // no master elected yet, state not recovered: passes by itself
		}
		return CannotWrite
	case "index_not_found_exception", "index_closed_exception",
		"invalid_index_name_exception": // the index name is taken (by an alias, a data stream): an operator's setup
		return CannotWrite
	case "validation_exception":
		if strings.Contains(reason, "shards open") || strings.Contains(reason, "total shards") {
			return CannotWrite
		}
	case "illegal_argument_exception":
		if strings.Contains(reason, "no write index is defined") || strings.Contains(reason, "has more than one index associated with it") {
			return CannotWrite
		}
	case "resource_already_exists_exception":
		return Retry // two writers created the day's index at once
	}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return TooLarge
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		// A rotated credential or a missing permission: an operator fixes
		// it, and a lagging shard is better than documents moved to the
		// dead-letter store.
		return CannotWrite
	case status == 0, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return Retry
	}
	return BadDocument
}

// AppendIndex appends one bulk item: the action line
// {"index":{"_index":INDEX,"_id":ID}} and the event as one line of JSON
// (event.Event.AppendJSON), each ending in a newline. index must be a
// valid index name, which never needs JSON escaping; id is escaped.
func AppendIndex(dst, index []byte, id string, e *event.Event) []byte {
	dst = append(dst, `{"index":{"_index":"`...)
	dst = append(dst, index...)
	dst = append(dst, `","_id":`...)
	dst = event.AppendJSONString(dst, id)
	dst = append(dst, "}}\n"...)
	dst = e.AppendJSON(dst)
	return append(dst, '\n')
}
