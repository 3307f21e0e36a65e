package lease_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// failingHeartbeats fails the first n heartbeats with a 500 and records
// when each heartbeat was sent.
type failingHeartbeats struct {
	*leasetest.Fake
	mu   sync.Mutex
	n    int
	sent []time.Time
}

func (s *failingHeartbeats) Heartbeat(ctx context.Context, id, name string, held int, stopping, first bool) (int64, error) {
	s.mu.Lock()
	s.sent = append(s.sent, time.Now())
	fail := len(s.sent) <= s.n
	s.mu.Unlock()
	if fail {
		return 0, &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}},
			Err: &smithy.GenericAPIError{Code: "InternalServerError"}}
	}
	return s.Fake.Heartbeat(ctx, id, name, held, stopping, first)
}

// TestFirstHeartbeatBacksOff pins the first heartbeat's retries (drawn
// from internal/backoff): RenewInterval/8, doubling, at most
// RenewInterval, with no jitter.
func TestFirstHeartbeatBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &failingHeartbeats{Fake: leasetest.NewFake(), n: 5}
		cfg := lease.Config{WorkerID: "w", Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second}
		c, err := lease.NewCoordinator(store, cfg, nopHandler{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		time.Sleep(20 * time.Second)
		cancel()
		<-done
		store.mu.Lock()
		defer store.mu.Unlock()
		if len(store.sent) < 6 {
			t.Fatalf("%d heartbeats sent, want at least 6", len(store.sent))
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
		for i, w := range want {
			if gap := store.sent[i+1].Sub(store.sent[i]); gap != w {
				t.Errorf("wait before heartbeat %d = %v, want %v (all: %v)", i+2, gap, w, store.sent)
			}
		}
	})
}
