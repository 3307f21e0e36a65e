package appevent_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/leasehold/leasehold/appevent"
)

// TestSchemaMatchesParser keeps SchemaJSON and the Go validation in step.
func TestSchemaMatchesParser(t *testing.T) {
	var s struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Enum      []string `json:"enum"`
			MaxLength int      `json:"maxLength"`
		} `json:"properties"`
		AdditionalProperties bool `json:"additionalProperties"`
	}
	if err := json.Unmarshal([]byte(appevent.SchemaJSON), &s); err != nil {
		t.Fatalf("SchemaJSON is not valid JSON: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"required", s.Required, []string{"event_id", "event_type", "occurred_at", "asset_id", "tenant_id"}},
		{"event_type enum", s.Properties["event_type"].Enum, []string{"view", "download", "share", "convert", "permission_change"}},
		{"event_id maxLength", s.Properties["event_id"].MaxLength, appevent.MaxEventIDChars},
		{"asset_id maxLength", s.Properties["asset_id"].MaxLength, appevent.MaxIDChars},
		{"tenant_id maxLength", s.Properties["tenant_id"].MaxLength, appevent.MaxIDChars},
		{"user_id maxLength", s.Properties["user_id"].MaxLength, appevent.MaxIDChars},
		{"user_agent maxLength", s.Properties["user_agent"].MaxLength, appevent.MaxUserAgentChars},
		{"referrer maxLength", s.Properties["referrer"].MaxLength, appevent.MaxReferrerChars},
		{"unknown fields allowed", s.AdditionalProperties, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if gs, ok := tc.got.([]string); ok {
				if !slices.Equal(gs, tc.want.([]string)) {
					t.Fatalf("schema has %v, parser uses %v", tc.got, tc.want)
				}
				return
			}
			if tc.got != tc.want {
				t.Fatalf("schema has %v, parser uses %v", tc.got, tc.want)
			}
		})
	}
	fields := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	want := []string{"asset_id", "client_ip", "event_id", "event_type", "occurred_at", "properties", "referrer", "tenant_id", "user_agent", "user_id"}
	if !slices.Equal(fields, want) {
		t.Fatalf("schema properties %v, want %v", fields, want)
	}
}
