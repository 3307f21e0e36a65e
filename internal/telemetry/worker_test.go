package telemetry_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leasehold/leasehold/internal/telemetry"
	"github.com/leasehold/leasehold/worker"
)

// The per-shard GetRecords counters an operator rates to see each
// shard's calls per second and throttling, and the profiler behind
// worker.pprof.
func TestWorkerReadMetricsAndPprof(t *testing.T) {
	stats := worker.Stats{Reads: map[string]worker.ShardReads{
		"shardId-000000000001": {Calls: 120, Throttled: 3, Bytes: 54321},
	}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewWorkerCollector(func() worker.Stats { return stats }))
	srv, err := telemetry.Listen("127.0.0.1:0", reg, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv.ServePprof()
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
		`leasehold_getrecords_total{shard_id="shardId-000000000001"} 120`,
		`leasehold_getrecords_throttled_total{shard_id="shardId-000000000001"} 3`,
		`leasehold_getrecords_bytes_total{shard_id="shardId-000000000001"} 54321`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d", code)
	}
}
