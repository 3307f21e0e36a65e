package collector_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer/producertest"
)

// Example runs a collector against an in-memory Kinesis and posts an NDJSON
// batch with one invalid event: the whole request is refused, with the
// reason by line and field.
func Example() {
	k := producertest.NewKinesis(1) // a real program passes a *kinesis.Client
	cfg := collector.DefaultConfig()
	cfg.Token = "s3cret"
	c, err := collector.New(k, "events", cfg, nil)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()

	send := func(body string) {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	send(`{"event_id":"e-1","event_type":"view","occurred_at":"2026-05-01T10:00:00Z","asset_id":"a-1","tenant_id":"acme"}
{"event_id":"e-2","event_type":"click","occurred_at":"2026-05-01T10:00:01Z","asset_id":"a-1","tenant_id":"acme"}
`)
	send(`{"event_id":"e-1","event_type":"view","occurred_at":"2026-05-01T10:00:00Z","asset_id":"a-1","tenant_id":"acme"}
`)
	stop()
	fmt.Println("serve:", <-done, "records:", len(k.Written()))
	// Output:
	// 400 {"accepted":0,"rejected":[{"line":2,"event_id":"e-2","errors":[{"field":"event_type","message":"\"click\" is not one of view, download, share, convert, permission_change"}]}],"error":"1 of 2 events are invalid; nothing was accepted"}
	// 202 {"accepted":1,"rejected":[]}
	// serve: <nil> records: 1
}
