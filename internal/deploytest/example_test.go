package deploytest

import (
	"context"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/elasticsearch"
	"github.com/leasehold/leasehold/processors/transform"
)

// TestExamplePipelineIsValid loads examples/pipeline.yaml through the
// config loader and builds its processors, so the README's example cannot
// rot. Sinks need live services and are checked by type name only.
func TestExamplePipelineIsValid(t *testing.T) {
	c, err := config.Load("../../examples/pipeline.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(&c.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	reg := processors.NewRegistry()
	transform.Register(reg)
	for _, st := range spec.Processors {
		ctor, err := reg.Processor(st.Type)
		if err != nil {
			t.Fatal(err)
		}
		if st.Type == "geoip" {
			// The database paths are the user's to set (the example points
			// at the database `dev up` installs, which a unit test need
			// not have); check the options decode strictly.
			var o transform.GeoIPOptions
			err = st.Options.Decode(&o)
		} else {
			_, err = ctor(context.Background(), st.Options, processors.Deps{})
		}
		if err != nil {
			t.Errorf("%s: %v", st.Type, err)
		}
	}
	var types []string
	for _, s := range spec.Sinks {
		types = append(types, s.Type)
	}
	if got := strings.Join(types, ","); got != "opensearch,s3,dynamodb" || spec.DeadLetter.Type != "s3" {
		t.Errorf("sinks %s, dead letter %s", got, spec.DeadLetter.Type)
	}
}

// TestExampleElasticsearchIsValid checks examples/elasticsearch.yaml: it
// loads, and its sink's options decode strictly and validate (the
// connection itself needs the local Elasticsearch).
func TestExampleElasticsearchIsValid(t *testing.T) {
	c, err := config.Load("../../examples/elasticsearch.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(&c.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Sinks) != 1 || spec.Sinks[0].Type != "elasticsearch" {
		t.Fatalf("sinks %+v", spec.Sinks)
	}
	var es elasticsearch.Config
	if err := spec.Sinks[0].Options.Decode(&es); err != nil {
		t.Fatal(err)
	}
	if err := es.Validate(); err != nil {
		t.Fatal(err)
	}
	if es.Retention.Days != 400 || es.Password != "leasehold-dev" {
		t.Errorf("decoded %+v", es)
	}
}
