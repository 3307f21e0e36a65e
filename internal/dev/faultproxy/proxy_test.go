package faultproxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
)

func TestProxy(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "served "+r.Method+" "+r.URL.Path+" "+string(b))
	}))
	defer svc.Close()
	p, err := faultproxy.NewProxy(svc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	post := func(target string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/_bulk", strings.NewReader("body"))
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := post(""); err != nil || code != 200 || body != "served POST /_bulk body" {
		t.Fatalf("forwarded: %d %q %v", code, body, err)
	}
	p.SetRule(func(r *http.Request) *faultproxy.Fault {
		if faultproxy.Operation(r) == "BatchWriteItem" {
			return faultproxy.DynamoDBThrottled()
		}
		return nil
	})
	if code, body, _ := post("DynamoDB_20120810.BatchWriteItem"); code != 400 || !strings.Contains(body, "ProvisionedThroughputExceededException") {
		t.Fatalf("throttled: %d %q", code, body)
	}
	if code, _, _ := post("DynamoDB_20120810.GetItem"); code != 200 {
		t.Fatalf("other operations pass: %d", code)
	}
	p.SetRule(func(*http.Request) *faultproxy.Fault { return faultproxy.Down() })
	if _, _, err := post(""); err == nil {
		t.Fatal("a down service answered")
	}
	p.SetRule(nil)
	if code, _, err := post(""); err != nil || code != 200 {
		t.Fatalf("back up: %d %v", code, err)
	}
	if fwd, flt := p.Stats(); fwd != 3 || flt < 2 {
		t.Fatalf("stats: forwarded %d, faulted %d", fwd, flt)
	}
}
