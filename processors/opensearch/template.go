package opensearch

import (
	"bytes"
	"context"
	"fmt"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/leasehold/leasehold/processors/searchbulk"
)

// Mappings returns the explicit mappings of the index template: one entry
// for every field of event.Event (see docs/EVENTS.md), shared with the
// elasticsearch sink (searchbulk.Mappings); properties is flat_object. It
// does not block; the result is a fresh value.
func Mappings() map[string]any { return searchbulk.Mappings(searchbulk.OpenSearch) }

// templateBody is the PUT _index_template body for c.
func templateBody(c Config, p searchbulk.IndexPattern) ([]byte, error) {
	b, err := searchbulk.Template{Flavor: searchbulk.OpenSearch, Pattern: p, Priority: *c.TemplatePriority, Shards: c.Shards, Replicas: c.Replicas}.Body()
	if err != nil {
		return nil, fmt.Errorf("opensearch: %w", err)
	}
	return b, nil
}

// putTemplate installs (or overwrites) the index template once. It blocks
// for one request; errors are classified like bulk request errors.
func (s *Sink) putTemplate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	resp, err := s.api.IndexTemplate.Create(ctx, opensearchapi.IndexTemplateCreateReq{
		IndexTemplate: s.cfg.TemplateName,
		Body:          bytes.NewReader(s.template),
	})
	if err != nil {
		status := 0
		if resp != nil && resp.Inspect().Response != nil {
			status = resp.Inspect().Response.StatusCode
		}
		return requestError("install index template "+s.cfg.TemplateName, status, err)
	}
	return nil
}

// ensureTemplate installs the template before the first bulk request of
// any shard, so that no index is auto-created with guessed mappings (a
// client_ip mapped as text stays wrong for that index's whole day). It
// blocks while another shard installs it; safe for concurrent use.
func (s *Sink) ensureTemplate(ctx context.Context) error {
	if err := s.retention.Ready(ctx); err != nil {
		return err
	}
	if !*s.cfg.Template || s.templateOK.Load() {
		return nil
	}
	s.templateMu.Lock()
	defer s.templateMu.Unlock()
	if s.templateOK.Load() {
		return nil
	}
	if err := s.putTemplate(ctx); err != nil {
		return err
	}
	s.templateOK.Store(true)
	return nil
}
