package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// Mappings returns the explicit mappings of the index template: one entry
// for every field of event.Event (see docs/EVENTS.md). Identifiers and
// enumerations are keyword; counts, sizes, byte offsets and durations are
// long; client_ip is ip; free text that users search
// by words (user_agent, referrer, uri) is keyword for aggregations with a
// text sub-field; properties is flat_object so that producers' free-form
// keys neither conflict nor explode the mapping. Unknown fields are kept in
// _source but not indexed (dynamic false): an event field added later never
// makes a document fail. It does not block; the result is a fresh value.
func Mappings() map[string]any {
	kw := func() map[string]any { return map[string]any{"type": "keyword"} }
	longKw := func(limit int) map[string]any { return map[string]any{"type": "keyword", "ignore_above": limit} }
	withText := func(limit int) map[string]any {
		m := longKw(limit)
		m["fields"] = map[string]any{"text": map[string]any{"type": "text"}}
		return m
	}
	typ := func(t string) map[string]any { return map[string]any{"type": t} }
	object := func(props map[string]any) map[string]any {
		return map[string]any{"type": "object", "dynamic": false, "properties": props}
	}
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"event_time":       map[string]any{"type": "date", "format": "strict_date_optional_time||epoch_millis"},
			"event_type":       kw(),
			"event_id":         kw(),
			"source":           kw(),
			"asset_id":         longKw(1024),
			"tenant":           longKw(1024),
			"user_id":          longKw(1024),
			"client_ip":        typ("ip"),
			"forwarded_for":    longKw(256),
			"referrer":         withText(4096),
			"referring_domain": longKw(1024),
			"geo": object(map[string]any{
				"country_iso": kw(),
				"country":     kw(),
				"city":        kw(),
				"asn":         typ("long"),
				"as_org":      longKw(1024),
			}),
			"ua": object(map[string]any{
				"browser":         kw(),
				"browser_version": kw(),
				"os":              kw(),
				"device":          kw(),
			}),
			"bot":           typ("boolean"),
			"user_agent":    withText(2048),
			"bytes":         typ("long"),
			"status":        typ("integer"),
			"method":        kw(),
			"uri":           withText(4096),
			"query":         longKw(4096),
			"host":          longKw(1024),
			"cache_result":  kw(),
			"edge_location": kw(),
			"time_taken_ms": typ("long"),
			"protocol":      kw(),
			"content_type":  longKw(1024),
			// CloudFront's fields after the first 26: how the response was
			// served. A 206 with its range and content_length tells a partial
			// transfer from a full download.
			"time_to_first_byte_ms": typ("long"),
			"protocol_version":      kw(),
			"tls_protocol":          kw(),
			"tls_cipher":            kw(),
			"content_length":        typ("long"),
			"range_start":           typ("long"),
			"range_end":             typ("long"),
			"request_bytes":         typ("long"),
			"client_port":           typ("integer"),
			"edge_response_result":  kw(),
			"edge_detailed_result":  kw(),
			"properties":            typ("flat_object"),
			"source_record": object(map[string]any{
				"stream":              kw(),
				"shard_id":            kw(),
				"sequence_number":     kw(),
				"sub_sequence_number": typ("long"),
			}),
			"asset": object(map[string]any{
				"title":      withText(1024),
				"type":       kw(),
				"collection": longKw(1024),
			}),
		},
	}
}

// templateBody is the PUT _index_template body for c.
func templateBody(c Config, p indexPattern) ([]byte, error) {
	tmpl := map[string]any{"mappings": Mappings()}
	settings := map[string]any{}
	if c.Shards != nil {
		settings["number_of_shards"] = *c.Shards
	}
	if c.Replicas != nil {
		settings["number_of_replicas"] = *c.Replicas
	}
	if len(settings) > 0 {
		tmpl["settings"] = map[string]any{"index": settings}
	}
	body := map[string]any{
		"index_patterns": []string{p.wildcard()},
		"priority":       *c.TemplatePriority,
		"template":       tmpl,
		"_meta":          map[string]any{"managed_by": "leasehold"},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("opensearch: encode index template: %w", err)
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
