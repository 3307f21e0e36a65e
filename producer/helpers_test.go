package producer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// start returns a producer on k with a manual clock and runs its send loop
// until the test ends.
func start(t *testing.T, k *producertest.Kinesis, opts ...producer.Option) (*producer.Producer, *producertest.Clock) {
	t.Helper()
	clk := producertest.NewClock()
	p, err := producer.New(k, "events", append([]producer.Option{producer.WithClock(clk), producer.WithBackoff(10*time.Millisecond, 80*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p, clk
}

// drive advances the manual clock in small steps until cond holds,
// failing the test after 20 s of real time. Outcomes never depend on the
// step: only how fast the test gets there.
func drive(t *testing.T, clk *producertest.Clock, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		clk.Advance(5 * time.Millisecond)
		time.Sleep(200 * time.Microsecond)
	}
}

// closeDriven closes p while driving the clock, and returns Close's error.
func closeDriven(t *testing.T, p *producer.Producer, clk *producertest.Clock) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close(context.Background()) }()
	var err error
	drive(t, clk, func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

// line is the data of record n of key.
func line(key string, n int) []byte { return []byte(fmt.Sprintf("%s#%06d", key, n)) }

// putMany puts n records over keys keys, numbered per key.
func putMany(t *testing.T, p *producer.Producer, n, keys int) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("key-%d", i%keys)
		if err := p.Put(context.Background(), key, line(key, i/keys)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
}

// checkWritten asserts that exactly the n records of putMany were written,
// each once, with each key's records in Put order unless ordered is false.
func checkWritten(t *testing.T, k *producertest.Kinesis, n, keys int, ordered bool) {
	t.Helper()
	recs, err := k.UserRecords()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, r := range recs {
		d := string(r.Data)
		if seen[d] {
			t.Fatalf("record %s written twice", d)
		}
		seen[d] = true
		key, num, _ := strings.Cut(d, "#")
		if key != r.PartitionKey {
			t.Fatalf("record %s has partition key %q", d, r.PartitionKey)
		}
		i, _ := strconv.Atoi(num)
		if prev, ok := last[key]; ordered && ok && i < prev {
			t.Fatalf("key %s: record %d written after %d", key, i, prev)
		}
		last[key] = i
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records written, want %d", len(seen), n)
	}
}

// results collects Results from the result handler.
type results struct {
	mu  sync.Mutex
	all []producer.Result
}

func (r *results) handle(res producer.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, res)
}

func (r *results) get() []producer.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]producer.Result(nil), r.all...)
}
