package transform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
)

// fromYAML builds a processor of type typ through a registry, from the
// stage's options written as YAML, as a pipeline config does.
func fromYAML(t testing.TB, typ, opts string) (processors.Processor, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(opts), &doc); err != nil {
		t.Fatal(err)
	}
	reg := processors.NewRegistry()
	transform.Register(reg)
	ctor, err := reg.Processor(typ)
	if err != nil {
		t.Fatal(err)
	}
	var node *yaml.Node
	if len(doc.Content) > 0 {
		node = doc.Content[0]
	}
	return ctor(context.Background(), processors.NewOptions("pipeline.processors[0]", "", node), processors.Deps{})
}

func TestFilter(t *testing.T) {
	events := []event.Event{
		{EventID: "view", EventType: event.TypeView, Source: event.SourceCloudFront, Status: 200, URI: "/assets/a/x.mp4", Host: "media.example.com", Method: "GET", CacheResult: "Hit", Geo: event.Geo{CountryISO: "SE"}, ReferringDomain: "example.com"},
		{EventID: "bot", EventType: event.TypeView, Source: event.SourceCloudFront, Status: 200, URI: "/assets/b/y.jpg", Bot: true, Method: "GET"},
		{EventID: "health", EventType: event.TypeRequest, Source: event.SourceCloudFront, Status: 200, URI: "/health/live", Method: "GET"},
		{EventID: "missing", EventType: event.TypeRequest, Source: event.SourceCloudFront, Status: 404, URI: "/nope", Method: "GET", CacheResult: "Error"},
		{EventID: "aborted", EventType: event.TypeRequest, Source: event.SourceCloudFront, Status: 0, URI: "/a", Method: "GET"},
		{EventID: "share", EventType: event.TypeShare, Source: event.SourceApp, Geo: event.Geo{CountryISO: "GB"}},
		{EventID: "post", EventType: event.TypeRequest, Source: event.SourceCloudFront, Status: 200, Method: "POST", Host: "api.example.com"},
	}
	tests := []struct {
		name string
		yaml string
		keep string
	}{
		{"bots", `drop: [{field: bot, equals: true}]`, "view health missing aborted share post"},
		{"humans (bot equals false)", `drop: [{field: bot, equals: false}]`, "bot"},
		{"uri prefix", `drop: [{field: uri, prefix: /health}]`, "view bot missing aborted share post"},
		{"status in (app events have status 0 too)", `drop: [{field: status, in: [0, 404]}]`, "view bot health post"},
		{"event type in", `drop: [{field: event_type, in: [request]}]`, "view bot share"},
		{"keep only views and downloads", `drop: [{field: event_type, in: [view, download], not: true}]`, "view bot"},
		{"source", `drop: [{field: source, equals: app}]`, "view bot health missing aborted post"},
		{"host", `drop: [{field: host, equals: api.example.com}]`, "view bot health missing aborted share"},
		{"method", `drop: [{field: method, in: [POST, PUT, DELETE]}]`, "view bot health missing aborted share"},
		{"cache result", `drop: [{field: cache_result, equals: Error}]`, "view bot health aborted share post"},
		{"country", `drop: [{field: country_iso, in: [GB]}]`, "view bot health missing aborted post"},
		{"no country", `drop: [{field: country_iso, equals: ""}]`, "view share"},
		{"referring domain", `drop: [{field: referring_domain, prefix: example.}]`, "bot health missing aborted share post"},
		{"any rule drops", `drop: [{field: bot, equals: true}, {field: uri, prefix: /health}, {field: event_type, in: [request]}]`, "view share"},
		{"many strings", `drop: [{field: uri, in: [/a, /b, /c, /d, /e, /f, /g, /h, /i, /nope]}]`, "view bot health share post"},
		{"nothing matches", `drop: [{field: status, equals: 500}]`, "view bot health missing aborted share post"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fromYAML(t, "filter", tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			batch := make([]*processors.Message, len(events))
			for i, e := range events {
				batch[i] = &processors.Message{Event: e, Parsed: true}
			}
			given := fmt.Sprint(batch)
			out, err := f.Process(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, m := range out {
				kept = append(kept, m.Event.EventID)
			}
			if got := strings.Join(kept, " "); got != tc.keep {
				t.Fatalf("kept %q, want %q", got, tc.keep)
			}
			if fmt.Sprint(batch) != given {
				t.Fatal("Process modified the batch it was given")
			}
		})
	}
}

func TestFilterPassesFailedMessages(t *testing.T) {
	f, err := transform.NewFilter(transform.FilterOptions{Drop: []transform.Rule{{Field: "bot", Equals: true}}})
	if err != nil {
		t.Fatal(err)
	}
	batch := messages([]byte("a"), []byte("b"))
	batch[0].Event.Bot = true
	batch[0].Fail("parse", 1, errors.New("poison")) // must reach the dead-letterer
	batch[1].Event.Bot = true
	out, _ := f.Process(context.Background(), batch)
	if len(out) != 1 || out[0] != batch[0] {
		t.Fatalf("got %d messages, want only the failed one", len(out))
	}
}

func TestFilterOptionErrors(t *testing.T) {
	supported := "supported: bot, cache_result, country_iso, event_type, host, method, referring_domain, source, status, uri"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no rules", `drop: []`, "drop: no rules"},
		{"no options", ``, "drop: no rules"},
		{"unknown key", `keep: [{field: bot, equals: true}]`, "field keep not found"},
		{"unknown rule key", `drop: [{field: bot, equal: true}]`, "field equal not found"},
		{"unknown field", `drop: [{field: user_agent, equals: curl}]`, `drop[0]: field "user_agent" is not supported; ` + supported},
		{"missing field", `drop: [{equals: x}]`, "drop[0]: field is missing; " + supported},
		{"no condition", `drop: [{field: bot}]`, "drop[0]: field bot: want exactly one of equals, in and prefix, have 0"},
		{"two conditions", `drop: [{field: uri, in: [/a], prefix: /b}]`, "have 2"},
		{"prefix on a number", `drop: [{field: status, prefix: "4"}]`, "prefix applies only to text fields"},
		{"string for bool", `drop: [{field: bot, equals: "yes"}]`, "drop[0]: field bot: value yes (string) is not true or false"},
		{"string for status", `drop: [{field: status, in: [200, "404"]}]`, "field status: value 404 (string) is not an integer"},
		{"number for string", `drop: [{field: host, equals: 42}]`, "field host: value 42 (int) is not a string; quote it"},
		{"empty in", `drop: [{field: host, in: []}]`, "in is an empty list"},
		{"second rule named", `drop: [{field: bot, equals: true}, {field: nope, equals: 1}]`, `drop[1]: field "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fromYAML(t, "filter", tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
