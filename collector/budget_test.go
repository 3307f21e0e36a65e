package collector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	tests := []struct {
		name           string
		held           [2]int // records, bytes taken first
		records, bytes int
		want           bool
	}{
		{"fits", [2]int{5, 500}, 5, 500, true},
		{"too many records", [2]int{5, 500}, 6, 1, false},
		{"too many bytes", [2]int{5, 500}, 1, 501, false},
		{"oversized request into an empty budget", [2]int{0, 0}, 20, 5000, true},
		{"oversized request into a used budget", [2]int{1, 1}, 20, 5000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBudget(10, 1000)
			if tt.held[0] > 0 && !b.tryAcquire(tt.held[0], tt.held[1]) {
				t.Fatal("setup did not fit")
			}
			if got := b.tryAcquire(tt.records, tt.bytes); got != tt.want {
				t.Errorf("tryAcquire(%d, %d) = %v, want %v", tt.records, tt.bytes, got, tt.want)
			}
		})
	}
}

// TestBudgetWaiters checks that waiters are woken by release, that a
// waiter whose context ends takes nothing, and that the count never goes
// over the limit under concurrent use.
func TestBudgetWaiters(t *testing.T) {
	b := newBudget(4, 1<<20)
	if !b.tryAcquire(4, 4) {
		t.Fatal("empty budget refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.acquire(ctx, 1, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire on a full budget = %v, want DeadlineExceeded", err)
	}
	if r, _ := b.used(); r != 4 {
		t.Fatalf("a timed-out acquire took room: %d used", r)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	for range 16 {
		wg.Go(func() {
			if err := b.acquire(context.Background(), 2, 2); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if r, _ := b.used(); r > peak {
				peak = r
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			b.release(2, 2)
		})
	}
	b.release(4, 4)
	wg.Wait()
	if r, by := b.used(); r != 0 || by != 0 {
		t.Errorf("used %d records, %d bytes after every release", r, by)
	}
	if peak > 4 {
		t.Errorf("peak %d records, limit 4", peak)
	}
}
