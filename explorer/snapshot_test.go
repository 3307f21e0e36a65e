package explorer

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// stateBackend answers the requests of a snapshot reading (index stats:
// one events index; the days of its events; no block records) and counts
// the readings. The first reading waits until release is closed.
type stateBackend struct {
	readings atomic.Int32
	started  chan struct{} // closed when the first reading has begun
	release  chan struct{}
	once     sync.Once
}

func (b *stateBackend) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	switch {
	case strings.Contains(path, "/_stats/"):
		if b.readings.Add(1) == 1 {
			b.once.Do(func() { close(b.started) })
			select {
			case <-b.release:
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
		return http.StatusOK, []byte(`{"indices":{"ev-2026.11.30":{"uuid":"u1","shards":{"0":[{"routing":{"primary":true},"seq_no":{"max_seq_no":7}}]}}}}`), nil
	case path == "/_msearch":
		return http.StatusOK, []byte(`{"responses":[{"aggregations":{"lo":{"value":1764460800000},"hi":{"value":1764500000000}}}]}`), nil
	case strings.HasSuffix(path, "-state/_search?ignore_unavailable=true&allow_no_indices=true"):
		return http.StatusOK, []byte(`{"hits":{"hits":[]}}`), nil
	}
	return http.StatusNotFound, []byte(`{}`), nil
}

func (b *stateBackend) Mappings() map[string]any { return map[string]any{} }

// TestWaitingSearchesShareTheSnapshotBeingRead: the page's six calls
// arrive at a new explorer while its first reading of the indices' state
// is under way (Serve starts one). With a snapshot lifetime, they wait
// for that reading and use it, rather than reading the state again one
// after the other.
func TestWaitingSearchesShareTheSnapshotBeingRead(t *testing.T) {
	fb := &stateBackend{started: make(chan struct{}), release: make(chan struct{})}
	r := newRollups(&store{b: fb, raw: "ev-*", log: zap.NewNop()}, "rp", 5*time.Second, zap.NewNop())
	ctx := context.Background()
	first := make(chan *snapshot, 1)
	go func() { first <- r.reload(ctx, 0) }()
	<-fb.started
	got := make(chan *snapshot, 6)
	for range 6 {
		go func() { got <- r.snapshot(ctx) }()
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the reading (the count is the same if they come after it)
	close(fb.release)
	s := <-first
	if !s.known || s.first != dayOf(time.Date(2025, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("snapshot: known %v, first day %v", s.known, dayTime(s.first))
	}
	for range 6 {
		if g := <-got; g != s {
			t.Fatalf("a waiting search got another snapshot than the one being read")
		}
	}
	if n := fb.readings.Load(); n != 1 {
		t.Fatalf("%d readings of the indices' state; want 1", n)
	}
}

// TestWaitingSearchesReadAgainWithoutLifetime: without a snapshot lifetime
// (RollupCheck 0) every search must see every write made before it, so a
// search that arrives while a reading is under way reads again after it.
func TestWaitingSearchesReadAgainWithoutLifetime(t *testing.T) {
	fb := &stateBackend{started: make(chan struct{}), release: make(chan struct{})}
	r := newRollups(&store{b: fb, raw: "ev-*", log: zap.NewNop()}, "rp", 0, zap.NewNop())
	ctx := context.Background()
	first := make(chan *snapshot, 1)
	go func() { first <- r.reload(ctx, 0) }()
	<-fb.started
	second := make(chan *snapshot, 1)
	go func() { second <- r.snapshot(ctx) }()
	time.Sleep(50 * time.Millisecond)
	close(fb.release)
	if a, b := <-first, <-second; a == b {
		t.Fatal("a search that came during a reading used it without a lifetime")
	}
	if n := fb.readings.Load(); n != 2 {
		t.Fatalf("%d readings of the indices' state; want 2", n)
	}
}
