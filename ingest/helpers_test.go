package ingest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

var hour = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// fixture is an ingester on a fake S3 and a fake 4-shard Kinesis.
type fixture struct {
	s3 *ingesttest.S3
	k  *producertest.Kinesis
	in *ingest.Ingester
}

func newFixture(t *testing.T, cfg ingest.Config) *fixture {
	t.Helper()
	f := &fixture{s3: ingesttest.NewS3(), k: producertest.NewKinesis(4)}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	cfg.ProducerOptions = append([]producer.Option{producer.WithLinger(2 * time.Millisecond),
		producer.WithBackoff(time.Millisecond, 10*time.Millisecond), producer.WithMaxAttempts(20)}, cfg.ProducerOptions...)
	in, err := ingest.New(f.s3, f.k, "logs", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = in.Close(ctx)
	})
	return f
}

// put stores a gzipped log file of n lines made with seed.
func (f *fixture) put(key string, n int, seed uint64) ingest.ObjectRef {
	data := ingesttest.Gzip(ingesttest.LogFile(hour, n, seed))
	etag := f.s3.Put("logs", key, data)
	return ingest.ObjectRef{Bucket: "logs", Key: key, ETag: etag, Size: int64(len(data))}
}

// ids counts the records written per x-edge-request-id.
func (f *fixture) ids(t *testing.T) map[string]int {
	t.Helper()
	recs, err := f.k.UserRecords()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range recs {
		line := r.Data[bytes.LastIndexByte(r.Data, '\n')+1:]
		out[string(bytes.Split(line, []byte{'\t'})[14])]++
	}
	return out
}

// want checks that lines [from, to) of the file made with seed were
// written exactly once each (at most maxDup times with maxDup > 1).
func want(t *testing.T, ids map[string]int, seed uint64, from, to, maxDup int) {
	t.Helper()
	for i := from; i < to; i++ {
		if c := ids[ingesttest.RequestID(seed, i)]; c < 1 || c > maxDup {
			t.Fatalf("line %d of file %d written %d times, want 1..%d", i, seed, c, maxDup)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
