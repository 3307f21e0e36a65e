package collector_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// downKinesis is a fake Kinesis that refuses connections while down.
type downKinesis struct {
	*producertest.Kinesis
	down      atomic.Bool
	listShard atomic.Int32 // ListShards calls
}

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

func (k *downKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if k.down.Load() {
		return nil, errRefused
	}
	return k.Kinesis.PutRecords(ctx, in, o...)
}

func (k *downKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	k.listShard.Add(1)
	if k.down.Load() {
		return nil, errRefused
	}
	return k.Kinesis.ListShards(ctx, in, o...)
}

// Issue 11 follow-up: a collector with a spool could not start while
// Kinesis was unreachable. Now it starts: it accepts events (202, on
// disk), says on /readyz and in a metric that Kinesis is unreachable, and
// delivers every event once Kinesis answers. Without a spool it refuses
// to start that way.
func TestStartWithoutKinesis(t *testing.T) {
	k := &downKinesis{Kinesis: producertest.NewKinesis(2)}
	k.down.Store(true)
	cfg := collector.DefaultConfig()
	plain, err := collector.New(k, "events", cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.StartWithoutKinesis(errRefused); err == nil {
		t.Fatal("StartWithoutKinesis without a spool must fail")
	}

	cfg.SpoolDir = t.TempDir()
	c, err := collector.New(k, "events", cfg, zaptest.NewLogger(t), producer.WithLinger(0), producer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartWithoutKinesis(errRefused); err != nil {
		t.Fatal(err)
	}
	url, stop := served(t, c)
	waitFor(t, "serving", func() bool { return !errors.Is(c.Ready(), collector.ErrNotServing) })
	if err := c.Ready(); !errors.Is(err, collector.ErrKinesisUnreachable) {
		t.Fatalf("Ready = %v, want ErrKinesisUnreachable", err)
	}
	if got := gauge(t, c, "leasehold_collector_kinesis_unreachable"); got != 1 {
		t.Fatalf("kinesis_unreachable %v, want 1", got)
	}
	for _, body := range []string{ndjson(event("a"), event("b")), ndjson(event("c"))} {
		if a := post(t, url, "application/x-ndjson", "", body); a.status != 202 {
			t.Fatalf("while Kinesis is unreachable: %d %+v", a.status, a.body)
		}
	}
	if got := gauge(t, c, "leasehold_collector_spool_events"); got != 3 {
		t.Fatalf("spool_events %v, want 3", got)
	}
	waitFor(t, "a probe", func() bool { return k.listShard.Load() > 0 })
	if err := c.Ready(); !errors.Is(err, collector.ErrKinesisUnreachable) {
		t.Fatalf("Ready = %v while still unreachable", err)
	}

	k.down.Store(false)
	waitFor(t, "readiness once Kinesis answers", func() bool { return c.Ready() == nil })
	waitFor(t, "delivery", func() bool { return c.ProducerStats().RecordsSent == 3 })
	if got := gauge(t, c, "leasehold_collector_kinesis_unreachable"); got != 0 {
		t.Fatalf("kinesis_unreachable %v, want 0", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids, _ := writtenIDs(t, k.Kinesis)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("written %v, want each of %v once", ids, want)
	}
}
