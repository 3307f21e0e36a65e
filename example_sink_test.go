package leasehold_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/localrun"
	"github.com/leasehold/leasehold/worker"
)

// countSink is a sink of your own: it counts documents per event type.
// A real sink writes to its store in Flush and reports in Durable how far
// that store has them: the worker checkpoints no further.
type countSink struct{}

func (countSink) Name() string { return "counts" }

func (countSink) Open(_ context.Context, shard worker.Shard, _ processors.DeadLetterer) (processors.ShardSink, error) {
	return &countShard{counts: map[string]int{}}, nil
}

func (countSink) Close(context.Context) error { return nil }

type countShard struct {
	counts  map[string]int
	durable checkpoint.Position
}

func (s *countShard) Write(_ context.Context, msgs []*processors.Message) error {
	for _, m := range msgs {
		s.counts[string(m.Event.EventType)]++
		s.durable = m.Position() // in memory: durable as soon as written
	}
	return nil
}

func (s *countShard) Flush(context.Context) error {
	fmt.Println("views:", s.counts["view"], "downloads:", s.counts["download"])
	return nil
}

func (s *countShard) Durable() checkpoint.Position { return s.durable }
func (s *countShard) Close() error                 { return nil }

// A sink of your own, registered by name next to the built-ins and named
// in the pipeline section. Here it runs on local input with localrun (as
// `leasehold pipeline run --sinks` does); leasehold.WithRegistry(reg) or
// leasehold.WithSink("counts", countSink{}) runs it in a worker.
func Example_sink() {
	reg := leasehold.NewRegistry()
	reg.RegisterSink("counts", func(_ context.Context, o processors.Options, _ processors.Deps) (processors.Sink, error) {
		return countSink{}, o.Decode(&struct{}{}) // no options
	})
	var pipeline yaml.Node
	if err := yaml.Unmarshal([]byte("processors: [{type: parse}]\nsinks: [{type: counts}]"), &pipeline); err != nil {
		panic(err)
	}
	var events strings.Builder // app events of just now: the pipeline keeps to a 30-day window
	for i, typ := range []string{"view", "download", "view"} {
		fmt.Fprintf(&events, `{"event_id":"e-%d","event_type":%q,"occurred_at":%q,"asset_id":"a-1","tenant_id":"acme"}`+"\n", i, typ, time.Now().UTC().Format(time.RFC3339))
	}
	sum, err := localrun.Run(context.Background(), localrun.Options{
		Stdin: strings.NewReader(events.String()), Pipeline: pipeline.Content[0], UseSinks: true,
		Registry: reg, Stdout: os.Stdout, Stderr: os.Stdout,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output:
	// views: 2 downloads: 1
	// pipeline run: 1 input, 3 read, 3 documents, 0 filtered, 0 dead letters
}
