package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeTime is a clock that sleeping advances.
type fakeTime struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return nil
}

func TestLimiterRate(t *testing.T) {
	tests := []struct {
		name           string
		records, bytes float64 // limits
		takes          int     // Wait calls
		perRecs, perB  int     // taken per call
		want           time.Duration
	}{
		// One second of burst, then the rate: 5,000 records at 1,000/s
		// take 4 s.
		{name: "records bind", records: 1000, takes: 50, perRecs: 100, perB: 100, want: 4 * time.Second},
		{name: "bytes bind", records: 1000, bytes: 1 << 20, takes: 40, perRecs: 10, perB: 256 << 10, want: 9 * time.Second},
		{name: "bytes only", bytes: 1000, takes: 3, perB: 1000, want: 2 * time.Second},
		{name: "within the burst", records: 1000, bytes: 1 << 20, takes: 10, perRecs: 100, perB: 1000, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeTime{now: time.Unix(0, 0)}
			l, err := NewLimiter(tt.records, tt.bytes)
			if err != nil {
				t.Fatal(err)
			}
			l.now, l.sleep, l.last = clock.Now, clock.Sleep, clock.Now()
			for range tt.takes {
				if err := l.Wait(context.Background(), tt.perRecs, tt.perB); err != nil {
					t.Fatal(err)
				}
			}
			got := clock.Now().Sub(time.Unix(0, 0))
			if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("took %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLimiterNilAndInvalid(t *testing.T) {
	l, err := NewLimiter(0, 0)
	if l != nil || err != nil {
		t.Fatalf("NewLimiter(0, 0) = %v, %v; want no limiter", l, err)
	}
	if err := l.Wait(context.Background(), 1e6, 1e9); err != nil {
		t.Fatalf("nil limiter waited: %v", err)
	}
	if _, err := NewLimiter(-1, 0); err == nil {
		t.Fatal("negative rate accepted")
	}
	lim, _ := NewLimiter(1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lim.Wait(ctx, 100, 0); err == nil {
		t.Fatal("Wait with a debt of 99 s returned nil on a cancelled context")
	}
}

func TestStreamRates(t *testing.T) {
	tests := []struct {
		shards             int
		share              float64
		aggregated         bool
		wantRecs, wantByte float64
	}{
		{shards: 1, share: 1, wantRecs: 1000, wantByte: 1 << 20},
		{shards: 4, share: 0.8, wantRecs: 3200, wantByte: 0.8 * 4 * (1 << 20)},
		{shards: 4, share: 0.8, aggregated: true, wantRecs: 0, wantByte: 0.8 * 4 * (1 << 20)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d shards %g agg %v", tt.shards, tt.share, tt.aggregated), func(t *testing.T) {
			r, b := StreamRates(tt.shards, tt.share, tt.aggregated)
			if r != tt.wantRecs || b != tt.wantByte {
				t.Fatalf("StreamRates = %g records/s, %g bytes/s; want %g, %g", r, b, tt.wantRecs, tt.wantByte)
			}
		})
	}
}
