package opensearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/leasehold/leasehold/processors/searchbulk"
)

// lifecycle implements searchbulk.Lifecycle for retention on OpenSearch:
// ISM where the cluster has the index-management plugin, and the core
// index API for the fallback. The sink keeps installing its own index
// template (template.go): an ISM policy attaches itself to new indices
// through its ism_template, so the template needs no setting for it.
// Safe for concurrent use.
type lifecycle struct {
	s *Sink
}

// LifecycleAPI asks GET _plugins/_ism/policies: 200 means ISM runs. A
// cluster without the plugin (the integ-test zip) answers 400 or 404
// (another handler claims the path, or none does).
func (l lifecycle) LifecycleAPI(ctx context.Context) (string, bool, error) {
	_, status, err := l.call(ctx, "ISM policies", http.MethodGet, "/_plugins/_ism/policies?size=1", "")
	switch {
	case err == nil:
		return "ISM", true, nil
	case status == http.StatusNotFound || status == http.StatusBadRequest || status == http.StatusMethodNotAllowed:
		return "ISM", false, nil
	}
	return "ISM", false, err
}

// PutPolicy installs or updates an ISM policy: a hot state that moves to
// delete once the index is days old (by creation: ISM has no origination
// date from the name), and an ism_template that attaches it to every new
// index of the pattern. An existing policy is updated with its sequence
// number, as ISM requires.
func (l lifecycle) PutPolicy(ctx context.Context, name string, days int, p searchbulk.IndexPattern) error {
	policy := map[string]any{"policy": map[string]any{
		"description":   "leasehold: delete event-time indices " + strconv.Itoa(days) + " days old",
		"default_state": "hot",
		"states": []any{
			map[string]any{"name": "hot", "actions": []any{}, "transitions": []any{
				map[string]any{"state_name": "delete", "conditions": map[string]any{"min_index_age": strconv.Itoa(days) + "d"}},
			}},
			map[string]any{"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{}},
		},
		"ism_template": []any{map[string]any{"index_patterns": []string{p.Wildcard()}, "priority": *l.s.cfg.TemplatePriority}},
	}}
	body, err := json.Marshal(policy)
	if err != nil {
		return err
	}
	path := "/_plugins/_ism/policies/" + url.PathEscape(name)
	b, status, err := l.call(ctx, "get ISM policy "+name, http.MethodGet, path, "")
	if err != nil && status != http.StatusNotFound {
		return err
	}
	if err == nil {
		var cur struct {
			SeqNo       int64 `json:"_seq_no"`
			PrimaryTerm int64 `json:"_primary_term"`
		}
		if err := json.Unmarshal(b, &cur); err != nil {
			return fmt.Errorf("get ISM policy %s: %w", name, err)
		}
		path += fmt.Sprintf("?if_seq_no=%d&if_primary_term=%d", cur.SeqNo, cur.PrimaryTerm)
	}
	_, _, err = l.call(ctx, "install ISM policy "+name, http.MethodPut, path, string(body))
	return err
}

// PolicySettings is nil: the policy's ism_template attaches it.
func (l lifecycle) PolicySettings(string, searchbulk.IndexPattern) map[string]any { return nil }

// PutTemplate is not used: the sink installs its template itself.
func (l lifecycle) PutTemplate(context.Context, string, []byte) error { return nil }

// ListIndices lists the indices matching wildcard, open and closed.
func (l lifecycle) ListIndices(ctx context.Context, wildcard string) ([]string, error) {
	b, _, err := l.call(ctx, "list indices "+wildcard, http.MethodGet, "/_cat/indices/"+url.PathEscape(wildcard)+"?format=json&h=index&expand_wildcards=open,closed", "")
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

// DeleteIndex deletes one index by name; 404 is success.
func (l lifecycle) DeleteIndex(ctx context.Context, name string) error {
	_, status, err := l.call(ctx, "delete index "+name, http.MethodDelete, "/"+url.PathEscape(name), "")
	if status == http.StatusNotFound {
		return nil
	}
	return err
}

// call sends one request through the sink's client (its auth, TLS and
// signing) bounded by request_timeout and returns the body of a 2xx
// answer, or the status and a classified error.
func (l lifecycle) call(ctx context.Context, op, method, path, body string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, l.s.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.s.client.Stream(req)
	if err != nil {
		return nil, 0, searchbulk.RequestFailure(&searchbulk.RequestError{Op: op, Err: err})
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		return b, resp.StatusCode, nil
	}
	re := &searchbulk.RequestError{Op: op, Status: resp.StatusCode}
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Type != "" {
		re.Type, re.Reason, re.Err = e.Error.Type, e.Error.Reason, errors.New(e.Error.Type+": "+e.Error.Reason)
	} else {
		re.Err = errors.New(strconv.Quote(string(b)))
	}
	return nil, resp.StatusCode, searchbulk.RequestFailure(re)
}
