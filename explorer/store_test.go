package explorer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// slowBackend answers every search after release is closed, counting
// the requests per body.
type slowBackend struct {
	release chan struct{}
	calls   atomic.Int64
	mu      sync.Mutex
	bodies  map[string]int
}

func (b *slowBackend) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	b.calls.Add(1)
	b.mu.Lock()
	b.bodies[string(body)]++
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	return 200, []byte(`{"took":1,"aggregations":{"n":{"value":7}}}`), nil
}

func (b *slowBackend) Mappings() map[string]any { return nil }

// TestStoreSharesSearchesUnderWay: callers asking the very same search
// at the same moment share one request to the cluster; a different body
// (another customer's filter) is its own request; a caller that gives up
// does not take the search away from the others.
func TestStoreSharesSearchesUnderWay(t *testing.T) {
	b := &slowBackend{release: make(chan struct{}), bodies: map[string]int{}}
	st := &store{b: b, raw: "events-*", log: zap.NewNop()}
	body := func(tenant string) obj {
		return obj{"size": 0, "query": term("tenant", tenant), "aggs": obj{"n": obj{"cardinality": obj{"field": "x"}}}}
	}
	gone, giveUp := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	results := make([]float64, 4)
	errs := make([]error, 4)
	for i, tenant := range []string{"a", "a", "a", "b"} {
		ctx := context.Background()
		if i == 0 {
			ctx = gone // the first caller, whose search the others join, leaves
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := st.search(ctx, "events-*", body(tenant))
			errs[i] = err
			results[i] = n.agg("n").value()
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the other callers of tenant a join
	giveUp()
	time.Sleep(20 * time.Millisecond)
	close(b.release)
	wg.Wait()
	if got := b.calls.Load(); got != 2 {
		t.Fatalf("%d requests to the cluster, want 2 (one per distinct search): %v", got, b.bodies)
	}
	if errs[0] == nil {
		t.Errorf("the caller that gave up got an answer")
	}
	for i := 1; i < 4; i++ {
		if errs[i] != nil || results[i] != 7 {
			t.Errorf("caller %d: %v, %v", i, results[i], errs[i])
		}
	}
	// Once done, the same search is asked again (no caching here: the
	// cluster's request cache does that).
	if _, err := st.search(context.Background(), "events-*", body("a")); err != nil || b.calls.Load() != 3 {
		t.Fatalf("a later search: %v, %d requests", err, b.calls.Load())
	}
}
