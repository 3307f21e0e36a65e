package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/internal/dev/testenv"

	// Imported under another name: this package has a producer type.
	kproducer "github.com/leasehold/leasehold/producer"
)

// collectorLoadDuration is how long TestCollectorLoad's clients post.
// 10 s keeps CI fast; raise it to 30 s for a steadier figure.
const collectorLoadDuration = 10 * time.Second

// collectorClients is how many clients post concurrently.
const collectorClients = 10

// collectorLoadAggregate turns KPL aggregation on in TestCollectorLoad. The
// local Kinesis takes about 2,000 records/s, so without aggregation it, not
// the collector, sets the figure; set false to measure that case.
const collectorLoadAggregate = true

// appEvent returns a valid app event.
func appEvent(id, asset string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"download","occurred_at":"2026-03-04T05:06:07.250Z","asset_id":%q,"tenant_id":"tenant-%d","user_id":"u-1","client_ip":"192.0.2.7","properties":{"size":1234}}`,
		id, asset, len(asset)%3)
}

// invalidEvents are the kinds of invalid events clients mix in: the body,
// and the field its first error must name ("" for the event as a whole).
var invalidEvents = []struct {
	body  func(id string) string
	field string
}{
	{func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"event_type":"click","occurred_at":"2026-03-04T05:06:07Z","asset_id":"a","tenant_id":"t"}`, id)
	}, "event_type"},
	{func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"event_type":"view","occurred_at":"2026-03-04T05:06:07Z","asset_id":"a"}`, id)
	}, "tenant_id"},
	{func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"event_type":"view","occurred_at":"yesterday","asset_id":"a","tenant_id":"t"}`, id)
	}, "occurred_at"},
	{func(id string) string { return fmt.Sprintf(`{"event_id":%q,`, id) }, ""},
}

// loadTally is what the clients saw, guarded by mu.
type loadTally struct {
	mu       sync.Mutex
	accepted map[string]bool // event ids answered 202
	refused  map[string]bool // event ids only ever answered 400 or 503
	requests map[int]int     // by status
	invalid  int             // invalid events rejected with the right reasons
}

// TestCollectorLoad runs the collector in process against the local
// Kinesis (4 shards, KPL aggregation unless collectorLoadAggregate is
// false, a 1,000-event buffer, 20 ms buffer wait) while 10
// clients post NDJSON batches of 1-50 events for collectorLoadDuration,
// one batch in five with invalid events mixed in. A 400 must list exactly
// the invalid lines, each with its reason, and the client then resends the
// valid rest; a 503 must carry Retry-After and accept nothing, and the
// client resends the same batch. After a graceful shutdown every shard is
// read from TRIM_HORIZON: each accepted event must be there exactly once,
// and no other. It logs the accepted events per second.
//
// Figure without the race detector:
//
//	go test -count=1 -run TestCollectorLoad -v ./integration/
func TestCollectorLoad(t *testing.T) {
	e := testenv.Require(t, "kinesis")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "collector")
	createStream(t, kc, stream, 4)

	cfg := collector.DefaultConfig()
	cfg.BufferRecords = 1000
	cfg.BufferWait = 20 * time.Millisecond
	cfg.MaxEventsPerRequest = 50
	c, err := collector.New(kc, stream, cfg, zaptest.NewLogger(t, zaptestLevel()), kproducer.WithAggregation(collectorLoadAggregate))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + collector.Path
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()

	tally := &loadTally{accepted: map[string]bool{}, refused: map[string]bool{}, requests: map[int]int{}}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: collectorClients}}
	start := time.Now()
	deadline := start.Add(collectorLoadDuration)
	var wg sync.WaitGroup
	for client := range collectorClients {
		wg.Go(func() { runLoadClient(t, httpc, url, client, deadline, tally) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopAt := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not return within 60s of shutdown")
	}
	st := c.ProducerStats()
	drain := time.Since(stopAt)
	readAt := time.Now()

	tally.mu.Lock()
	defer tally.mu.Unlock()
	for id := range tally.accepted {
		delete(tally.refused, id) // refused once, accepted on a retry
	}
	counts := map[string]int{}
	for _, u := range readStream(t, kc, stream) {
		ev, err := appevent.Parse(u.Data)
		if err != nil {
			t.Errorf("stream holds an invalid event %q: %v", u.Data, err)
			continue
		}
		counts[ev.EventID]++
		if u.PartitionKey != ev.AssetID {
			t.Errorf("event %s has partition key %q, want its asset_id %q", ev.EventID, u.PartitionKey, ev.AssetID)
		}
	}
	read := time.Since(readAt)
	var missing, dup, extra []string
	for id := range tally.accepted {
		switch counts[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dup = append(dup, id)
		}
	}
	for id := range counts {
		if !tally.accepted[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(dup)+len(extra) > 0 {
		t.Errorf("accepted %d events: %d missing from the stream (e.g. %v), %d there more than once (e.g. %v), %d there but never accepted (e.g. %v)",
			len(tally.accepted), len(missing), first(missing), len(dup), first(dup), len(extra), first(extra))
	}
	if len(tally.accepted) == 0 || tally.invalid == 0 {
		t.Errorf("the load exercised too little: %d accepted, %d invalid", len(tally.accepted), tally.invalid)
	}
	t.Logf("%d clients for %s: %.0f events/s accepted (%d events, %d Kinesis records, %d PutRecords calls); requests by status %v; %d invalid events rejected with reasons; %d valid events refused and not resent before the end; shutdown took %s, reading the stream back %s",
		collectorClients, elapsed.Round(time.Millisecond), float64(len(tally.accepted))/elapsed.Seconds(), len(tally.accepted),
		st.KinesisRecords, st.Calls, tally.requests, tally.invalid, len(tally.refused), drain.Round(time.Millisecond), read.Round(time.Millisecond))
}

// runLoadClient posts batches until deadline, resending the valid part of
// a 400 and the whole of a 503, and records every outcome in tally.
func runLoadClient(t *testing.T, httpc *http.Client, url string, client int, deadline time.Time, tally *loadTally) {
	rng := rand.New(rand.NewPCG(uint64(client), 42))
	seq := 0
	for time.Now().Before(deadline) {
		type item struct {
			id, body, field string
			invalid         bool
		}
		var batch []item
		n := 1 + rng.IntN(50)
		withInvalid := rng.IntN(5) == 0
		for i := range n {
			seq++
			id := fmt.Sprintf("c%02d-%07d", client, seq)
			if withInvalid && (i == 0 || rng.IntN(10) == 0) {
				k := invalidEvents[rng.IntN(len(invalidEvents))]
				batch = append(batch, item{id: id, body: k.body(id), field: k.field, invalid: true})
				continue
			}
			batch = append(batch, item{id: id, body: appEvent(id, fmt.Sprintf("asset-%d", rng.IntN(500)))})
		}
		for len(batch) > 0 && time.Now().Before(deadline) {
			var body strings.Builder
			for _, it := range batch {
				body.WriteString(it.body)
				body.WriteByte('\n')
			}
			status, retryAfter, resp, err := postEvents(httpc, url, "", body.String())
			if err != nil {
				t.Errorf("client %d: %v", client, err)
				return
			}
			tally.mu.Lock()
			tally.requests[status]++
			switch status {
			case http.StatusAccepted:
				if resp.Accepted != len(batch) {
					t.Errorf("202 with accepted %d for %d events", resp.Accepted, len(batch))
				}
				for _, it := range batch {
					tally.accepted[it.id] = true
				}
				batch = nil
			case http.StatusBadRequest:
				// Exactly the invalid lines, each with the expected reason.
				byLine := map[int]collector.Rejected{}
				for _, r := range resp.Rejected {
					byLine[r.Line] = r
				}
				var rest []item
				for i, it := range batch {
					r, rejected := byLine[i+1]
					switch {
					case it.invalid && !rejected:
						t.Errorf("invalid event %s (line %d) not rejected: %+v", it.id, i+1, resp)
					case !it.invalid && rejected:
						t.Errorf("valid event %s (line %d) rejected: %+v", it.id, i+1, r)
					case it.invalid && (len(r.Errors) == 0 || r.Errors[0].Field != it.field || r.Errors[0].Message == ""):
						t.Errorf("event %s rejected with %+v, want a reason for field %q", it.id, r.Errors, it.field)
					case it.invalid:
						tally.invalid++
					default:
						rest = append(rest, it)
					}
				}
				if resp.Accepted != 0 {
					t.Errorf("400 with %d accepted", resp.Accepted)
				}
				batch = rest
			case http.StatusServiceUnavailable:
				if retryAfter == "" || resp.Accepted != 0 || resp.Error == "" {
					t.Errorf("503 with Retry-After %q, accepted %d, error %q; want a Retry-After, nothing accepted, a reason", retryAfter, resp.Accepted, resp.Error)
				}
				for _, it := range batch {
					tally.refused[it.id] = true
				}
			default:
				t.Errorf("status %d: %+v", status, resp)
				batch = nil
			}
			tally.mu.Unlock()
			if status == http.StatusServiceUnavailable {
				// Retry-After says 1 s; the test retries sooner to keep the
				// buffer full, which is what it measures.
				time.Sleep(50 * time.Millisecond)
			}
		}
		if len(batch) > 0 {
			tally.mu.Lock()
			for _, it := range batch {
				tally.refused[it.id] = true
			}
			tally.mu.Unlock()
		}
	}
}

// postEvents posts an NDJSON body and decodes the answer.
func postEvents(httpc *http.Client, url, token, body string) (status int, retryAfter string, resp collector.Response, err error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", resp, err
	}
	req.Header.Set("Content-Type", collector.ContentTypeNDJSON)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := httpc.Do(req)
	if err != nil {
		return 0, "", resp, err
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
		return r.StatusCode, "", resp, fmt.Errorf("status %d: body is not a collector response: %w", r.StatusCode, err)
	}
	return r.StatusCode, r.Header.Get("Retry-After"), resp, nil
}

// streamEventIDs returns the event ids in the stream, sorted.
func streamEventIDs(t *testing.T, kc *kinesis.Client, stream string) []string {
	t.Helper()
	var ids []string
	for _, u := range readStream(t, kc, stream) {
		ev, err := appevent.Parse(u.Data)
		if err != nil {
			t.Fatalf("stream holds an invalid event %q: %v", u.Data, err)
		}
		ids = append(ids, ev.EventID)
	}
	sort.Strings(ids)
	return ids
}

func first(ids []string) []string { return ids[:min(3, len(ids))] }

// zaptestLevel keeps the load test's log to warnings and errors.
func zaptestLevel() zaptest.LoggerOption { return zaptest.Level(zapcore.WarnLevel) }

// binaryEnv is the environment for the leasehold binary on the local stack.
func binaryEnv(e testenv.Endpoints, stream string, extra ...string) []string {
	env := append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_KINESIS="+e.Kinesis, "LEASEHOLD_STREAM_NAME="+stream, "LEASEHOLD_LOG_FORMAT=json",
	)
	return append(env, extra...)
}

// TestCollectorBinary runs `leasehold collect` with a token and checks the
// wiring a user relies on: 401 without the token, 400 with reasons, 202,
// /metrics, /readyz, exit code 0 after SIGTERM with every accepted event
// in the stream, and the token never in the log.
func TestCollectorBinary(t *testing.T) {
	e := testenv.Require(t, "kinesis")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "collect-bin")
	createStream(t, kc, stream, 2)
	const token = "tok-7c1f0a-not-in-logs"

	var logBuf syncBuffer
	cmd := exec.Command(binary, "collect")
	cmd.Env = binaryEnv(e, stream, "LEASEHOLD_COLLECT_LISTEN=127.0.0.1:0", "LEASEHOLD_COLLECT_METRICS_ADDR=127.0.0.1:0",
		"LEASEHOLD_COLLECT_TOKEN="+token, "LEASEHOLD_COLLECT_AGGREGATE=true", "LEASEHOLD_COLLECT_SHUTDOWN_GRACE=10s")
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})

	apiAddr := waitLogAddr(t, &logBuf, "collector listening", exited)
	metricsAddr := waitLogAddr(t, &logBuf, "metrics listening", exited)
	api := "http://" + apiAddr + collector.Path
	httpc := &http.Client{Timeout: 10 * time.Second}

	tests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
	}{
		{"no token", "", appEvent("b-1", "a-1"), 401},
		{"wrong token", "nope", appEvent("b-1", "a-1"), 401},
		{"invalid event", token, appEvent("b-1", "a-1") + "\n" + `{"event_id":"b-2"}`, 400},
		{"accepted", token, appEvent("b-1", "a-1") + "\n" + appEvent("b-2", "a-2") + "\n" + appEvent("b-3", "a-1"), 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, resp, err := postEvents(httpc, api, tt.token, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d: %+v", status, tt.wantStatus, resp)
			}
		})
	}

	get := func(path string) (int, string) {
		resp, err := httpc.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`leasehold_collector_requests_total{code="401"} 2`,
		`leasehold_collector_requests_total{code="400"} 1`,
		`leasehold_collector_requests_total{code="202"} 1`,
		`leasehold_collector_events_total{outcome="accepted"} 3`,
		`leasehold_collector_events_total{outcome="invalid"} 1`,
		`leasehold_aws_calls_total{operation="DescribeStreamSummary",outcome="ok",service="Kinesis"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("collect exited with %v after SIGTERM, want 0; log:\n%s", err, logBuf.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("collect did not exit within 30s of SIGTERM; log:\n%s", logBuf.String())
	}
	if ids := streamEventIDs(t, kc, stream); !reflect.DeepEqual(ids, []string{"b-1", "b-2", "b-3"}) {
		t.Errorf("stream holds %v, want [b-1 b-2 b-3]", ids)
	}
	if strings.Contains(logBuf.String(), token) {
		t.Errorf("the token appears in the log:\n%s", logBuf.String())
	}
}

// waitLogAddr waits for a JSON log line with msg and returns its addr.
func waitLogAddr(t *testing.T, log *syncBuffer, msg string, exited <-chan error) string {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(log.String(), "\n") {
			var v struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &v) == nil && v.Msg == msg && v.Addr != "" {
				return v.Addr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("exited (%v) before logging %q:\n%s", err, msg, log.String())
		default:
		}
	}
	t.Fatalf("no %q in the log within 30s:\n%s", msg, log.String())
	return ""
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProduceBinary runs `leasehold produce` on small inputs: from a file
// with invalid lines (reported by line, the rest sent, exit 1) and from
// stdin with aggregation (exit 0). The stream must hold exactly the valid
// events.
func TestProduceBinary(t *testing.T) {
	e := testenv.Require(t, "kinesis")
	kc := testenv.Kinesis(e)
	var valid []string
	var lines []string
	for i := range 40 {
		id := "p-" + strconv.Itoa(100+i)
		valid = append(valid, id)
		lines = append(lines, appEvent(id, "asset-"+strconv.Itoa(i%7)))
	}
	withInvalid := append(append([]string(nil), lines[:10]...), `{"event_id":"bad-1","event_type":"view"}`, "", "not json")
	withInvalid = append(withInvalid, lines[10:]...)

	tests := []struct {
		name       string
		args       []string
		stdin      string
		file       string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{
			name: "file with invalid lines", file: strings.Join(withInvalid, "\n") + "\n",
			wantCode: 1, wantStdout: "sent 40 events",
			wantStderr: []string{"line 11: occurred_at: is required", "line 13: invalid JSON", "2 invalid lines, 0 events not sent"},
		},
		{
			name: "stdin aggregated", args: []string{"--aggregate"}, stdin: strings.Join(lines, "\n"),
			wantCode: 0, wantStdout: "sent 40 events",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := testenv.Name(t, "produce")
			createStream(t, kc, stream, 2)
			args := append([]string{"produce"}, tt.args...)
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "events.ndjson")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--file", path)
			}
			cmd := exec.Command(binary, args...)
			cmd.Env = binaryEnv(e, stream, "LEASEHOLD_LOG_LEVEL=warn")
			cmd.Stdin = strings.NewReader(tt.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.wantStdout)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			ids := streamEventIDs(t, kc, stream)
			if !reflect.DeepEqual(ids, valid) {
				t.Errorf("stream holds %d events %v, want the %d valid ones", len(ids), first(ids), len(valid))
			}
		})
	}
}
