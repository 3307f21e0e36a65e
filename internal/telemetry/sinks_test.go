package telemetry_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leasehold/leasehold/internal/telemetry"
	"github.com/leasehold/leasehold/processors"
)

// The sink metrics and the readiness an operator sees when the OpenSearch
// sink cannot write and the S3 sink's buffer is half full.
func TestSinkMetricsAndReadiness(t *testing.T) {
	states := map[string]processors.SinkState{
		"opensearch": {Stalled: 2, CannotWrite: 1, StalledSince: time.Now().Add(-time.Minute), Retries: 7, CannotWriteErrors: 5, BufferedBytes: 1000, LastError: "shard limit"},
		"s3":         {BufferedBytes: 128 << 20, BufferLimit: 256 << 20, BufferWaits: 3},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewSinkCollector(func() map[string]processors.SinkState { return states }))
	notReady := errors.New("sink opensearch cannot write (1 shards waiting): shard limit")
	srv, err := telemetry.Listen("127.0.0.1:0", reg, telemetry.AllReady(func() error { return nil }, nil, func() error { return notReady }))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Run(t.Context()) }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`leasehold_sink_cannot_write_shards{sink="opensearch"} 1`,
		`leasehold_sink_stalled_shards{sink="opensearch"} 2`,
		`leasehold_sink_write_retries_total{sink="opensearch"} 7`,
		`leasehold_sink_cannot_write_errors_total{sink="opensearch"} 5`,
		`leasehold_sink_buffered_bytes{sink="s3"} 1.34217728e+08`,
		`leasehold_sink_buffer_limit_bytes{sink="s3"} 2.68435456e+08`,
		`leasehold_sink_buffer_waits_total{sink="s3"} 3`,
		`leasehold_sink_stalled_seconds{sink="opensearch"} 6`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "sink opensearch cannot write") {
		t.Errorf("/readyz = %d %q", code, body)
	}
}
