package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
	"github.com/leasehold/leasehold/worker"
)

// buildFromYAML parses a config file's pipeline section and builds it with
// the built-in processors and a test-only "memory" sink and dead-letter
// destination.
func buildFromYAML(t *testing.T, config string) (*processors.Pipeline, *memSink, *memDeadLetters, error) {
	t.Helper()
	var doc struct {
		Pipeline yaml.Node `yaml:"pipeline"`
	}
	if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(&doc.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	sink, dl := &memSink{}, &memDeadLetters{}
	reg := processors.NewRegistry()
	transform.Register(reg)
	reg.RegisterSink("memory", func(context.Context, processors.Options, processors.Deps) (processors.Sink, error) { return sink, nil })
	reg.RegisterDeadLetter("memory", func(context.Context, processors.Options, processors.Deps) (processors.DeadLetterer, error) {
		return dl, nil
	})
	p, err := processors.Build(context.Background(), reg, spec, processors.Deps{}, zap.NewNop())
	return p, sink, dl, err
}

// TestChainFromYAML builds the whole chain from a config file and runs the
// CloudFront fixture through it: the truncated line is dead-lettered, the
// robots are filtered out, and every other line arrives parsed, enriched
// and anonymised.
func TestChainFromYAML(t *testing.T) {
	dbs := testGeoDBs(t)
	config := `
pipeline:
  processors:
    - type: parse
    - type: useragent
    - type: geoip
      city_db: ` + dbs.City + `
      asn_db: ` + dbs.ASN + `
    - type: anonymize_ip
      ipv6_prefix: 32
    - type: asset_id
      name: page_name
      pattern: '^/(?P<asset>[a-z]+)\.html$'
    - type: filter
      drop:
        - {field: bot, equals: true}
  sinks:
    - type: memory
  dead_letter:
    type: memory
  event_time:
    max_past: 3650d   # the fixture's lines are from 2019 to 2022
`
	p, sink, dl, err := buildFromYAML(t, config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer p.Close(ctx)
	sp, err := p.Factory()(ctx, worker.Shard{StreamName: "events", ShardID: "shardId-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(worker.CloseShutdown)
	data := fixtureRecords(t)
	recs := make([]worker.Record, len(data))
	for i, d := range data {
		recs[i] = record(i, d)
	}
	if err := sp.Process(ctx, recs); err != nil {
		t.Fatal(err)
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Position != recs[len(recs)-1].Position() {
		t.Fatalf("checkpoint %v, want the last record %v (filtered and dead-lettered records count as done)", cp.Position, recs[len(recs)-1].Position())
	}
	if got := dl.Got(); len(got) != 1 || !strings.Contains(got[0], "parse: cloudfront: wrong field count") {
		t.Fatalf("dead letters %q, want the truncated line, at stage parse", got)
	}
	docs := sink.Docs()
	if len(docs) != len(recs)-1-4 { // 1 truncated, 3 HeadlessChrome, 1 curl
		t.Fatalf("%d documents, want %d", len(docs), len(recs)-5)
	}
	byID := map[string]event.Event{}
	for _, d := range docs {
		var e event.Event
		if err := json.Unmarshal([]byte(d), &e); err != nil {
			t.Fatal(err)
		}
		if e.Bot {
			t.Errorf("bot %s not filtered", e.EventID)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.EventID, err)
		}
		byID[e.EventID] = e
	}
	tests := []struct {
		id               string
		ip, asset, city  string
		asn              uint32
		country, browser string
	}{
		{"SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", "89.160.20.0", "index", "Linköping", 29518, "SE", "Chrome"},
		{"k6WGMNkEzR5BEM_SaF47gjtX9zBDO2m349OY2an0QPEaUum1ZOLrow==", "2a02:cf40::", "index", "", 0, "NO", "Chrome"},
		{"3AqrZGCnF_g0-5KOvfA7c9XLcf4YGvMFSeFdIetR1N_2y8jSis8Zxg==", "89.160.20.0", "", "Linköping", 29518, "SE", "Chrome"},
	}
	for _, tc := range tests {
		t.Run(tc.id[:8], func(t *testing.T) {
			e, ok := byID[tc.id]
			if !ok {
				t.Fatalf("document %s missing", tc.id)
			}
			if e.ClientIP != tc.ip || e.AssetID != tc.asset || e.Geo.City != tc.city || e.Geo.ASN != tc.asn || e.Geo.CountryISO != tc.country || e.UA.Browser != tc.browser {
				t.Fatalf("got ip %q asset %q geo %+v browser %q", e.ClientIP, e.AssetID, e.Geo, e.UA.Browser)
			}
			if e.SourceRecord.ShardID != "shardId-000000000001" || e.SourceRecord.Stream != "events" {
				t.Fatalf("source record %+v", e.SourceRecord)
			}
		})
	}
}

// TestBuildReportsEveryBadOption checks that a config with several mistakes
// fails at construction with one error per stage, each naming its config
// path, the option and what is valid.
func TestBuildReportsEveryBadOption(t *testing.T) {
	config := `
pipeline:
  processors:
    - type: parse
      format: csv
    - type: geoip
      city_db: /nonexistent/GeoLite2-City.mmdb
    - type: anonymize_ip
      ipv4_prefix: 40
    - type: asset_id
      pattern: '^/assets/([a-z]+)/'
    - type: filter
      drop: [{field: colour, equals: red}]
    - type: useragent
      cache: 10
  sinks:
    - type: memory
  dead_letter:
    type: memory
`
	_, _, _, err := buildFromYAML(t, config)
	if err == nil {
		t.Fatal("Build accepted a bad config")
	}
	for _, want := range []string{
		`pipeline.processors[0] (parse): transform: invalid option: format: unknown format "csv"; valid: auto, cloudfront, app, cloudfront_realtime`,
		`pipeline.processors[1] (geoip): transform: invalid option: city_db: open /nonexistent/GeoLite2-City.mmdb`,
		`pipeline.processors[2] (anonymize_ip): transform: invalid option: ipv4_prefix: 40 is out of range; want 0 to 32`,
		`pipeline.processors[3] (asset_id): transform: invalid option: pattern: "^/assets/([a-z]+)/" has no named group "asset"`,
		`pipeline.processors[4] (filter): transform: invalid option: drop[0]: field "colour" is not supported`,
		`pipeline.processors[5] (useragent): pipeline.processors[5]: yaml: unmarshal errors:`,
		`field cache not found in type transform.UserAgentOptions`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if !errors.Is(err, transform.ErrOption) {
		t.Error("error does not wrap transform.ErrOption")
	}
}

// TestRealtimeFromYAML configures the real-time format's field list in YAML.
func TestRealtimeFromYAML(t *testing.T) {
	p, err := fromYAML(t, "parse", "format: cloudfront_realtime\nfields: [timestamp, c-ip, sc-status, cs-method, cs-uri-stem, x-edge-request-id]")
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := p.Process(context.Background(), messages([]byte(rtLine)))
	if f := batch[0].Failed(); f != nil {
		t.Fatal(f.Err)
	}
	if e := batch[0].Event; e.Query != "w=100" || e.URI != "/assets/a-2/x.jpg" || e.ClientIP != "216.160.83.56" {
		t.Fatalf("event %+v", e)
	}
	if _, err := fromYAML(t, "parse", "format: cloudfront_realtime\nfields: [timestamp, colour]"); !errors.Is(err, cloudfront.ErrUnknownField) || !errors.Is(err, transform.ErrOption) {
		t.Fatalf("unknown real-time field: %v", err)
	}
}

// TestChainConcurrentShards runs one set of processors for several shards
// at once, as a worker does, and checks every shard gets the same result
// as a lone run (the race detector checks the rest).
func TestChainConcurrentShards(t *testing.T) {
	chain := benchChain(t)
	filter, err := transform.NewFilter(transform.FilterOptions{Drop: []transform.Rule{{Field: "bot", Equals: true}}})
	if err != nil {
		t.Fatal(err)
	}
	chain = append(chain, filter)
	data := fixtureRecords(t)
	run := func() []string {
		batch := messages(data...)
		for _, p := range chain {
			var err error
			if batch, err = p.Process(context.Background(), batch); err != nil {
				t.Error(err)
				return nil
			}
		}
		var docs []string
		for _, m := range batch {
			if m.Failed() == nil {
				docs = append(docs, string(m.Event.AppendJSON(nil)))
			}
		}
		return docs
	}
	want := strings.Join(run(), "\n")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if got := strings.Join(run(), "\n"); got != want {
					t.Error("a concurrent run differs from a lone run")
					return
				}
			}
		})
	}
	wg.Wait()
}
