package searchbulk_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors/searchbulk"
)

// The answers are OpenSearch 2.19's, captured from the local stack (see
// integration.TestOpenSearchSinkCannotWrite for the same against the real
// cluster).
func TestClassify(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		errType, cause string
		want           searchbulk.Class
	}{
		{"shard limit", 400, "validation_exception", "Validation Failed: 1: this action would add [2] total shards, but this cluster currently has [0]/[1] maximum shards open;", searchbulk.CannotWrite},
		{"shard limit, elasticsearch 8", 400, "validation_exception", "Validation Failed: 1: this action would add [2] shards, but this cluster currently has [1000]/[1000] maximum normal shards open;", searchbulk.CannotWrite},
		{"missing index, auto-create off", 404, "index_not_found_exception", "no such index [leasehold-events-2026.12.04]", searchbulk.CannotWrite},
		{"closed index", 400, "index_closed_exception", "closed", searchbulk.CannotWrite},
		{"alias without a write index", 400, "illegal_argument_exception", "no write index is defined for alias [events]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index", searchbulk.CannotWrite},
		{"read-only index", 403, "cluster_block_exception", "index [x] blocked by: [FORBIDDEN/5/index read-only (api)];", searchbulk.CannotWrite},
		{"flood stage", 429, "cluster_block_exception", "index [x] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];", searchbulk.CannotWrite},
		{"no master yet", 503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];", searchbulk.Retry},
		{"index name taken by an alias", 400, "invalid_index_name_exception", "Invalid index name [x], already exists as alias", searchbulk.CannotWrite},
		{"credentials", 401, "security_exception", "missing authentication credentials", searchbulk.CannotWrite},
		{"permission", 403, "security_exception", "no permissions for [indices:data/write/bulk]", searchbulk.CannotWrite},
		{"throttled item", 429, "es_rejected_execution_exception", "rejected execution", searchbulk.Retry},
		{"circuit breaker", 429, "circuit_breaking_exception", "[parent] Data too large", searchbulk.Retry},
		{"index created twice", 400, "resource_already_exists_exception", "index [x] already exists", searchbulk.Retry},
		{"unavailable shard", 503, "unavailable_shards_exception", "primary shard is not active", searchbulk.Retry},
		{"no answer", 0, "", "", searchbulk.Retry},
		{"timeout", 408, "", "", searchbulk.Retry},
		{"too large", 413, "", "", searchbulk.TooLarge},
		{"mapping conflict", 400, "mapper_parsing_exception", "failed to parse field [client_ip] of type [ip]", searchbulk.BadDocument},
		{"other validation", 400, "validation_exception", "Validation Failed: 1: id [xxx] is too long, must be no longer than 512 bytes", searchbulk.BadDocument},
		{"field limit", 400, "illegal_argument_exception", "Limit of total fields [1000] has been exceeded", searchbulk.BadDocument},
		{"malformed request", 400, "parse_exception", "request body is required", searchbulk.BadDocument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := searchbulk.Classify(tc.status, tc.errType, tc.cause); got != tc.want {
				t.Errorf("Classify(%d, %s) = %s, want %s", tc.status, tc.errType, got, tc.want)
			}
		})
	}
}

func TestAppendIndexIsTwoNDJSONLines(t *testing.T) {
	e := event.Event{EventTime: time.Date(2026, 12, 4, 1, 2, 3, 0, time.UTC), EventType: event.TypeView, EventID: `id"\` + "\n", Source: event.SourceApp}
	out := searchbulk.AppendIndex(nil, []byte("events-2026.12.04"), e.EventID, &e)
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), out)
	}
	var action struct {
		Index struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		} `json:"index"`
	}
	if err := json.Unmarshal(lines[0], &action); err != nil {
		t.Fatal(err)
	}
	var back event.Event
	if err := json.Unmarshal(lines[1], &back); err != nil {
		t.Fatal(err)
	}
	if action.Index.Index != "events-2026.12.04" || action.Index.ID != e.EventID || back.EventID != e.EventID {
		t.Fatalf("action %+v doc %+v", action, back)
	}
}
