package transform_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/transform"
	"github.com/leasehold/leasehold/worker"
)

// defaultTenant is a user-written processor: it sets Tenant on events that
// have none. Like every processor it must be safe for concurrent use; it
// holds only immutable configuration.
type defaultTenant struct{ tenant string }

func (d defaultTenant) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if m.Parsed && m.Event.Tenant == "" {
			m.Event.Tenant = d.tenant
		}
	}
	return batch, nil
}

// memSink is a tiny in-memory sink: it keeps each shard's documents until
// Flush, then "writes" them (appends their JSON to docs).
type memSink struct {
	mu   sync.Mutex
	docs []string // guarded by mu
}

func (s *memSink) Name() string                    { return "memory" }
func (s *memSink) Close(ctx context.Context) error { return nil }
func (s *memSink) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	return &memShardSink{s: s}, nil
}

func (s *memSink) Docs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.docs...)
}

type memShardSink struct {
	s       *memSink
	pending []*processors.Message
	durable checkpoint.Position
}

func (w *memShardSink) Write(ctx context.Context, msgs []*processors.Message) error {
	w.pending = append(w.pending, msgs...)
	return nil
}

func (w *memShardSink) Flush(ctx context.Context) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	for _, m := range w.pending {
		w.s.docs = append(w.s.docs, string(m.Event.AppendJSON(nil)))
		w.durable = m.Position()
	}
	w.pending = nil
	return nil
}

func (w *memShardSink) Durable() checkpoint.Position { return w.durable }
func (w *memShardSink) Close() error                 { return nil }

// memDeadLetters keeps dead-lettered messages as "sequence stage: error".
type memDeadLetters struct {
	mu  sync.Mutex
	got []string // guarded by mu
}

func (d *memDeadLetters) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		d.got = append(d.got, fmt.Sprintf("%s %s: %v", m.Record.SequenceNumber, m.Failed().Stage, m.Failed().Err))
	}
	return nil
}

func (d *memDeadLetters) Got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.got...)
}

// Example registers a user-written processor next to the built-ins, builds
// a chain from the registry by type name (as a pipeline config would), and
// runs three records through processors.NewPipeline: a CloudFront line, a
// line from curl (dropped by the filter) and a record that does not parse
// (dead-lettered with the reason).
func Example() {
	ctx := context.Background()
	reg := processors.NewRegistry()
	transform.Register(reg)
	reg.RegisterProcessor("default_tenant", func(_ context.Context, opts processors.Options, _ processors.Deps) (processors.Processor, error) {
		var o struct {
			Tenant string `yaml:"tenant"`
		}
		if err := opts.Decode(&o); err != nil {
			return nil, err
		}
		if o.Tenant == "" {
			return nil, fmt.Errorf("%s: tenant is required", opts.Path())
		}
		return defaultTenant{tenant: o.Tenant}, nil
	})

	var stages []processors.Stage
	for i, st := range []struct{ typ, opts string }{
		{"parse", "format: cloudfront"},
		{"useragent", ""},
		{"anonymize_ip", "ipv4_prefix: 16"},
		{"asset_id", `pattern: '^/assets/(?P<asset>[a-z0-9-]+)/'`},
		{"default_tenant", "tenant: acme"},
		{"filter", "drop: [{field: bot, equals: true}]"},
	} {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(st.opts), &node); err != nil {
			panic(err)
		}
		var opts *yaml.Node
		if len(node.Content) > 0 {
			opts = node.Content[0]
		}
		ctor, err := reg.Processor(st.typ)
		if err != nil {
			panic(err)
		}
		p, err := ctor(ctx, processors.NewOptions(fmt.Sprintf("pipeline.processors[%d]", i), "", opts), processors.Deps{})
		if err != nil {
			panic(err)
		}
		stages = append(stages, processors.Stage{Name: st.typ, Processor: p})
	}

	sink, dl := &memSink{}, &memDeadLetters{}
	pipeline, err := processors.NewPipeline(stages, []processors.Sink{sink}, dl, zap.NewNop())
	if err != nil {
		panic(err)
	}
	shard, err := pipeline.Factory()(ctx, worker.Shard{StreamName: "events", ShardID: "shardId-000000000000"})
	if err != nil {
		panic(err)
	}
	defer shard.Close(worker.CloseShutdown)

	view := "2019-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/assets/a-1/film.mp4\t200\t-\t" +
		"Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36" +
		"\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\tmedia.example.com\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\tvideo/mp4\t78\t-\t-"
	curl := "2019-12-13\t22:37:02\tSEA19-C2\t900\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/\t502\t-\tcurl/7.55.1\t-\t-\tError\tkBkDzGnceVtWHqSCqBUqtA_cEs2T3tFUBbnBNkB9El_uVRhHgcZfcw==\twww.example.com\thttp\t387\t0.103\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t12644\t0.103\tOriginDnsError\ttext/html\t507\t-\t-"
	// The lines reached the stream the day after they were logged; the
	// pipeline accepts events up to 30 days before their arrival
	// (pipeline.event_time).
	arrived := time.Date(2019, 12, 14, 0, 0, 0, 0, time.UTC)
	var recs []worker.Record
	for i, data := range []string{view, curl, "not a log line"} {
		recs = append(recs, worker.Record{StreamName: "events", ShardID: "shardId-000000000000", SequenceNumber: strconv.Itoa(100 + i), Data: []byte(data), ArrivalTime: arrived})
	}
	if err := shard.Process(ctx, recs); err != nil {
		panic(err)
	}
	cp, err := shard.Flush(ctx)
	if err != nil {
		panic(err)
	}
	for _, doc := range sink.Docs() {
		fmt.Println(doc)
	}
	for _, d := range dl.Got() {
		fmt.Println("dead letter:", d)
	}
	fmt.Println("checkpoint:", cp.Position.Sequence)
	// Output:
	// {"event_time":"2019-12-04T21:02:31Z","event_type":"view","event_id":"SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==","source":"cloudfront","asset_id":"a-1","tenant":"acme","client_ip":"89.160.0.0","ua":{"browser":"Chrome","browser_version":"78.0.3904.108","os":"Windows","device":"desktop"},"bot":false,"user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36","bytes":392,"status":200,"method":"GET","uri":"/assets/a-1/film.mp4","host":"media.example.com","cache_result":"Hit","edge_location":"LAX1","time_taken_ms":1,"time_to_first_byte_ms":1,"protocol":"https","protocol_version":"HTTP/2.0","tls_protocol":"TLSv1.2","tls_cipher":"ECDHE-RSA-AES128-GCM-SHA256","content_type":"video/mp4","content_length":78,"request_bytes":23,"client_port":11040,"edge_response_result":"Hit","edge_detailed_result":"Hit","source_record":{"stream":"events","shard_id":"shardId-000000000000","sequence_number":"100","sub_sequence_number":0}}
	// dead letter: 102 parse: cloudfront: wrong field count: has 1 fields, which is no standard layout [12 15 18 19 23 24 26 33], and the record has no #Fields header
	// checkpoint: 102
}
