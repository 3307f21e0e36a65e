package searchbulk

import (
	"encoding/json"
	"fmt"
)

// Flavor is the cluster a template is for: the two accept the same
// mappings except for the type of free-form objects.
type Flavor int

// The flavors.
const (
	OpenSearch Flavor = iota
	Elasticsearch
)

// Mappings returns the explicit mappings of the index template: one entry
// for every field of event.Event (see docs/EVENTS.md). Identifiers and
// enumerations are keyword; counts, sizes, byte offsets and durations are
// long; client_ip is ip; free text that users search
// by words (user_agent, referrer, uri) is keyword for aggregations with a
// text sub-field; properties is one field of its own so that producers'
// free-form keys neither conflict nor explode the mapping: flat_object on
// OpenSearch, flattened on Elasticsearch (each cluster's name for it).
// Unknown fields are kept in _source but not indexed (dynamic false): an
// event field added later never makes a document fail. It does not block;
// the result is a fresh value.
func Mappings(f Flavor) map[string]any {
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
	freeForm := typ("flat_object")
	if f == Elasticsearch {
		freeForm = typ("flattened")
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
			"properties":            freeForm,
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

// Template describes the composable index template a sink installs.
type Template struct {
	Flavor   Flavor
	Pattern  IndexPattern
	Priority int
	// Shards and Replicas set index.number_of_shards and
	// index.number_of_replicas when not nil.
	Shards, Replicas *int
	// IndexSettings are further index settings, e.g. {"lifecycle":
	// {"name": "leasehold-events"}} to attach an ILM policy.
	IndexSettings map[string]any
}

// Body is the PUT _index_template body of t: the same JSON for both
// clusters but for the flavor's mappings.
func (t Template) Body() ([]byte, error) {
	tmpl := map[string]any{"mappings": Mappings(t.Flavor)}
	settings := map[string]any{}
	if t.Shards != nil {
		settings["number_of_shards"] = *t.Shards
	}
	if t.Replicas != nil {
		settings["number_of_replicas"] = *t.Replicas
	}
	for k, v := range t.IndexSettings {
		settings[k] = v
	}
	if len(settings) > 0 {
		tmpl["settings"] = map[string]any{"index": settings}
	}
	body := map[string]any{
		"index_patterns": []string{t.Pattern.Wildcard()},
		"priority":       t.Priority,
		"template":       tmpl,
		"_meta":          map[string]any{"managed_by": "leasehold"},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode index template: %w", err)
	}
	return b, nil
}
