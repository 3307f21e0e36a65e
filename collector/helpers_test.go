package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// event returns a valid app event with the given id.
func event(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"view","occurred_at":"2026-01-02T03:04:05Z","asset_id":"asset-%s","tenant_id":"tenant-1"}`, id, id)
}

// ndjson joins lines with newlines.
func ndjson(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// newCollector returns a collector over a fresh 2-shard fake Kinesis.
func newCollector(t *testing.T, cfg collector.Config, opts ...producer.Option) (*collector.Collector, *producertest.Kinesis) {
	t.Helper()
	k := producertest.NewKinesis(2)
	c, err := collector.New(k, "events", cfg, zaptest.NewLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// served runs c.Serve on a loopback listener and returns its base URL and
// a stop function that ends Serve and returns its error.
func served(t *testing.T, c *collector.Collector) (url string, stop func() error) {
	return servedB(t, c)
}

// servedB is served for tests and benchmarks.
func servedB(t testing.TB, c *collector.Collector) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	var once bool
	var serveErr error
	stop = func() error {
		if !once {
			once = true
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return within 30s of its context ending")
			}
		}
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

// answer is a decoded response.
type answer struct {
	status     int
	retryAfter string
	body       collector.Response
}

// post sends body to url with the content type and bearer token (none when
// empty).
func post(t *testing.T, url, contentType, token, body string) answer {
	t.Helper()
	a, err := tryPost(url, contentType, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryPost is post for goroutines other than the test's: it returns
// failures instead of ending the test.
func tryPost(url, contentType, token, body string) (answer, error) {
	req, err := http.NewRequest(http.MethodPost, url+collector.Path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return answer{}, fmt.Errorf("status %d: Content-Type %q, want application/json", resp.StatusCode, ct)
	}
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		return answer{}, fmt.Errorf("status %d: body is not a Response: %w", resp.StatusCode, err)
	}
	return a, nil
}

// serve runs one request through c.ServeHTTP.
func serve(t *testing.T, c http.Handler, req *http.Request) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	return decode(t, rec.Code, rec.Header(), rec.Body)
}

func decode(t *testing.T, status int, h http.Header, body io.Reader) answer {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("status %d: Content-Type %q, want application/json", status, ct)
	}
	a := answer{status: status, retryAfter: h.Get("Retry-After")}
	if err := json.NewDecoder(body).Decode(&a.body); err != nil {
		t.Fatalf("status %d: body is not a Response: %v", status, err)
	}
	return a
}

// writtenIDs returns the event ids the fake Kinesis holds, sorted, and the
// partition key of each.
func writtenIDs(t *testing.T, k *producertest.Kinesis) ([]string, map[string]string) {
	t.Helper()
	recs, err := k.UserRecords()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	keys := map[string]string{}
	for _, r := range recs {
		ev, err := appevent.Parse(r.Data)
		if err != nil {
			t.Fatalf("record %s is not a valid event: %v", r.Data, err)
		}
		ids = append(ids, ev.EventID)
		keys[ev.EventID] = r.PartitionKey
	}
	sort.Strings(ids)
	return ids, keys
}

// waitFor polls cond every 5 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func isFailed(err error) (*producer.FailedError, bool) {
	var fe *producer.FailedError
	return fe, errors.As(err, &fe)
}
