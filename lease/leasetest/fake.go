// Package leasetest provides an in-memory lease.Store with the same
// conditional semantics as the DynamoDB store, and a conformance suite that
// runs the same assertions against any Store, the fake and the real one.
package leasetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// Fake is an in-memory lease.Store. It is safe for concurrent use. Calls
// counts every method call by name, for tests of cost.
type Fake struct {
	mu      sync.Mutex
	leases  map[string]lease.Lease
	workers map[string]lease.Worker
	calls   map[string]int
	// Fail, when set, is consulted before every call; a non-nil result is
	// returned as that call's error (fault injection).
	Fail func(method, shardOrWorker string) error
}

// NewFake returns an empty store.
func NewFake() *Fake {
	return &Fake{leases: map[string]lease.Lease{}, workers: map[string]lease.Worker{}, calls: map[string]int{}}
}

// Calls returns how often each method was called.
func (f *Fake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func (f *Fake) enter(method, id string) error {
	f.calls[method]++
	if f.Fail != nil {
		return f.Fail(method, id)
	}
	return nil
}

func clone(l lease.Lease) lease.Lease {
	l.Parents = slices.Clone(l.Parents)
	l.Checkpoint.Sinks = maps.Clone(l.Checkpoint.Sinks)
	return l
}

// EnsureTable implements lease.Store.
func (f *Fake) EnsureTable(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enter("EnsureTable", "")
}

// Snapshot implements lease.Store.
func (f *Fake) Snapshot(ctx context.Context) (lease.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Snapshot", ""); err != nil {
		return lease.Snapshot{}, err
	}
	var s lease.Snapshot
	for _, l := range f.leases {
		s.Leases = append(s.Leases, clone(l))
	}
	for _, w := range f.workers {
		s.Workers = append(s.Workers, w)
	}
	sort.Slice(s.Leases, func(i, j int) bool { return s.Leases[i].ShardID < s.Leases[j].ShardID })
	sort.Slice(s.Workers, func(i, j int) bool { return s.Workers[i].ID < s.Workers[j].ID })
	return s, nil
}

// Get implements lease.Store.
func (f *Fake) Get(ctx context.Context, shardID string) (lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Get", shardID); err != nil {
		return lease.Lease{}, err
	}
	l, ok := f.leases[shardID]
	if !ok {
		return lease.Lease{}, fmt.Errorf("get lease %s: %w", shardID, lease.ErrNotFound)
	}
	return clone(l), nil
}

// Create implements lease.Store.
func (f *Fake) Create(ctx context.Context, l lease.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Create", l.ShardID); err != nil {
		return err
	}
	if _, ok := f.leases[l.ShardID]; ok {
		return fmt.Errorf("create lease %s: %w", l.ShardID, lease.ErrExists)
	}
	l = clone(l)
	l.HandoffTo = ""
	l.UpdatedAt = time.Now()
	f.leases[l.ShardID] = l
	return nil
}

// Take implements lease.Store.
func (f *Fake) Take(ctx context.Context, shardID, owner string, epoch int64) (lease.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Take", shardID); err != nil {
		return lease.Lease{}, err
	}
	l, ok := f.leases[shardID]
	if !ok || l.Epoch != epoch {
		return lease.Lease{}, fmt.Errorf("take lease %s at epoch %d: %w", shardID, epoch, lease.ErrConflict)
	}
	l.Owner, l.Epoch, l.HandoffTo, l.UpdatedAt = owner, l.Epoch+1, "", time.Now()
	f.leases[shardID] = l
	return clone(l), nil
}

// RequestHandoff implements lease.Store.
func (f *Fake) RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("RequestHandoff", shardID); err != nil {
		return err
	}
	l, ok := f.leases[shardID]
	if !ok || l.Owner != owner || l.Epoch != epoch || l.HandoffTo != "" {
		return fmt.Errorf("request handoff of %s: %w", shardID, lease.ErrConflict)
	}
	l.HandoffTo = requester
	f.leases[shardID] = l
	return nil
}

// CancelHandoff implements lease.Store.
func (f *Fake) CancelHandoff(ctx context.Context, shardID, requester string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CancelHandoff", shardID); err != nil {
		return err
	}
	if l, ok := f.leases[shardID]; ok && l.HandoffTo == requester {
		l.HandoffTo = ""
		f.leases[shardID] = l
	}
	return nil
}

// Transfer implements lease.Store.
func (f *Fake) Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Transfer", shardID); err != nil {
		return 0, err
	}
	l, ok := f.leases[shardID]
	if !ok || l.Owner != owner || l.Epoch != epoch {
		return 0, fmt.Errorf("transfer lease %s at epoch %d: %w", shardID, epoch, lease.ErrLost)
	}
	l.Owner, l.Epoch, l.HandoffTo, l.UpdatedAt = to, l.Epoch+1, "", time.Now()
	l.Checkpoint.Position, l.Checkpoint.MillisBehind = cp.Position, cp.MillisBehind
	if len(cp.Sinks) > 0 {
		l.Checkpoint.Sinks = maps.Clone(cp.Sinks)
	}
	f.leases[shardID] = l
	return l.Epoch, nil
}

// Checkpoint implements lease.Store.
func (f *Fake) Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Checkpoint", shardID); err != nil {
		return err
	}
	l, ok := f.leases[shardID]
	if !ok || l.Owner != owner || l.Epoch != epoch {
		return fmt.Errorf("checkpoint %s at epoch %d: %w", shardID, epoch, lease.ErrLost)
	}
	l.Checkpoint.Position, l.Checkpoint.MillisBehind = cp.Position, cp.MillisBehind
	if len(cp.Sinks) > 0 {
		l.Checkpoint.Sinks = maps.Clone(cp.Sinks)
	}
	l.UpdatedAt = time.Now()
	f.leases[shardID] = l
	return nil
}

// Heartbeat implements lease.Store.
func (f *Fake) Heartbeat(ctx context.Context, workerID string, held int, stopping bool) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Heartbeat", workerID); err != nil {
		return 0, err
	}
	w := f.workers[workerID]
	w.ID, w.Held, w.Stopping, w.UpdatedAt = workerID, held, stopping, time.Now()
	w.Heartbeat++
	f.workers[workerID] = w
	return w.Heartbeat, nil
}

// DeleteWorker implements lease.Store.
func (f *Fake) DeleteWorker(ctx context.Context, workerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DeleteWorker", workerID); err != nil {
		return err
	}
	delete(f.workers, workerID)
	return nil
}

// Delete implements lease.Store.
func (f *Fake) Delete(ctx context.Context, shardID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("Delete", shardID); err != nil {
		return err
	}
	delete(f.leases, shardID)
	return nil
}

var _ lease.Store = (*Fake)(nil)
