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
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// Fake is an in-memory lease.Store. It is safe for concurrent use. It
// counts every call by method, and the capacity each would consume on
// DynamoDB (item sizes by DynamoDB's rules, eventually consistent reads at
// half price, scans and queries by total size per 1 MB page, batch reads
// per item), so cost can be measured without AWS. Like the DynamoDB store
// it polls the fleet partition with a query when that is cheaper. Leases it returns share their Parents and Checkpoint.Sinks
// with the store, which never changes them in place: do not modify them.
type Fake struct {
	// Before, when set, is called ahead of every call, outside the store's
	// lock, with the method name and the shard or worker it is about. A
	// non-nil error is returned as the call's error and the call is not
	// applied. It may block (a slow or black-holed table); it should
	// return when ctx ends.
	Before func(ctx context.Context, method, id string) error
	// After, when set, is called once a call was applied, outside the lock.
	// It may block (an answer that comes back late); a non-nil error
	// replaces the call's result (an answer lost on the way back).
	After func(ctx context.Context, method, id string) error

	mu      sync.RWMutex  // guards the items: reads share it, writes hold it alone
	view    []lease.Lease // the leases as a slice, rebuilt after a write (nil: stale); shared by snapshots
	viewMu  sync.Mutex    // guards view: readers rebuild it under the read lock
	leases  map[string]lease.Lease
	sizes   map[string]int // lease item bytes, kept with every write (scans of big tables stay cheap)
	workers map[string]lease.Worker
	gen     int64
	// fleetBytes is the fleet partition's size at the last scan or query
	// poll, as the DynamoDB store remembers it to choose how to poll.
	fleetBytes atomic.Int64

	statMu sync.Mutex     // guards the counters below
	calls  map[string]int //
	reads  float64        // read request units
	writes float64        // write request units
}

// NewFake returns an empty store.
func NewFake() *Fake {
	return &Fake{leases: map[string]lease.Lease{}, sizes: map[string]int{}, workers: map[string]lease.Worker{}, calls: map[string]int{}}
}

// Calls returns how often each method was called.
func (f *Fake) Calls() map[string]int {
	f.statMu.Lock()
	defer f.statMu.Unlock()
	return maps.Clone(f.calls)
}

// Units returns the capacity the calls so far would have consumed on
// DynamoDB.
func (f *Fake) Units() lease.Units {
	f.statMu.Lock()
	defer f.statMu.Unlock()
	return lease.Units{Read: f.reads, Write: f.writes}
}

// charge adds units to the counters.
func (f *Fake) charge(read, write float64) {
	f.statMu.Lock()
	f.reads += read
	f.writes += write
	f.statMu.Unlock()
}

// read runs op with the items locked for reading, between the hooks.
func (f *Fake) read(ctx context.Context, method, id string, op func() error) error {
	return f.run(ctx, method, id, false, op)
}

// call runs op with the items locked for writing, between the hooks.
func (f *Fake) call(ctx context.Context, method, id string, op func() error) error {
	return f.run(ctx, method, id, true, op)
}

func (f *Fake) run(ctx context.Context, method, id string, write bool, op func() error) error {
	if f.Before != nil {
		if err := f.Before(ctx, method, id); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.statMu.Lock()
	f.calls[method]++
	f.statMu.Unlock()
	var err error
	if write {
		f.mu.Lock()
		err = op()
		f.mu.Unlock()
	} else {
		f.mu.RLock()
		err = op()
		f.mu.RUnlock()
	}
	if f.After != nil {
		if aerr := f.After(ctx, method, id); aerr != nil {
			return aerr
		}
	}
	return err
}

func readUnits(bytes int, consistent bool) float64 {
	u := float64((bytes + 4095) / 4096)
	if u == 0 {
		u = 1
	}
	if !consistent {
		u /= 2
	}
	return u
}

func writeUnits(bytes ...int) float64 {
	b := 0
	for _, x := range bytes {
		b = max(b, x)
	}
	return float64(max((b+1023)/1024, 1))
}

func (f *Fake) leaseBytes(id string) int { return f.sizes[id] }

// put stores l and its size. f.mu is held for writing.
func (f *Fake) put(l lease.Lease) {
	f.leases[l.ShardID] = l
	f.sizes[l.ShardID] = lease.LeaseItemBytes(l)
	f.view = nil
}

func (f *Fake) workerBytes(id string) int {
	if w, ok := f.workers[id]; ok {
		return lease.WorkerItemBytes(w)
	}
	return 0
}

func clone(l lease.Lease) lease.Lease {
	l.Parents = slices.Clone(l.Parents)
	l.Checkpoint.Sinks = maps.Clone(l.Checkpoint.Sinks)
	return l
}

// EnsureTable implements lease.Store.
func (f *Fake) EnsureTable(ctx context.Context) error {
	return f.call(ctx, "EnsureTable", "", func() error { return nil })
}

// Snapshot implements lease.Store. The leases come in no particular order
// and, between writes, successive snapshots share one slice: do not
// modify it.
func (f *Fake) Snapshot(ctx context.Context) (lease.Snapshot, error) {
	var s lease.Snapshot
	err := f.read(ctx, "Snapshot", "", func() error {
		f.viewMu.Lock()
		if f.view == nil {
			view := make([]lease.Lease, 0, len(f.leases))
			for _, l := range f.leases {
				view = append(view, l)
			}
			f.view = view
		}
		s.Leases = f.view
		f.viewMu.Unlock()
		bytes := 0
		for _, b := range f.sizes {
			bytes += b
		}
		for _, w := range f.workers {
			s.Workers = append(s.Workers, w)
		}
		s.Generation = f.gen
		s.FleetBytes = f.fleetSize()
		f.fleetBytes.Store(int64(s.FleetBytes))
		units := pagedUnits(bytes + s.FleetBytes)
		s.ReadUnits = units
		f.charge(units, 0)
		return nil
	})
	if err != nil {
		return lease.Snapshot{}, err
	}
	sort.Slice(s.Workers, func(i, j int) bool { return s.Workers[i].ID < s.Workers[j].ID })
	return s, nil
}

// fleetSize is the fleet partition's size: the generation item (once
// bumped) and every worker item. f.mu is held.
func (f *Fake) fleetSize() int {
	bytes := 0
	for _, w := range f.workers {
		bytes += lease.WorkerItemBytes(w)
	}
	if f.gen != 0 {
		bytes += lease.GenerationItemBytes(f.gen)
	}
	return bytes
}

// pagedUnits is an eventually consistent Scan or Query of bytes: a page
// holds up to 1 MB, each page is billed on its own by its summed size.
func pagedUnits(bytes int) float64 {
	units := 0.0
	for ; bytes > 1<<20; bytes -= 1 << 20 {
		units += readUnits(1<<20, false)
	}
	return units + readUnits(bytes, false)
}

// Poll implements lease.Store. It reads the fleet's items as the DynamoDB
// store does (lease.PlanPoll): a query of the whole fleet partition or of
// identity ranges, billed by the summed size of every item it returns, or
// a batch read billed per key asked for, found or not; leases by the batch.
func (f *Fake) Poll(ctx context.Context, workers, shards []string) (lease.Polled, error) {
	var p lease.Polled
	err := f.read(ctx, "Poll", "", func() error {
		asked := map[string]bool{}
		for _, id := range workers {
			asked[id] = true
		}
		units := 0.0
		p.Generation = f.gen
		plan := lease.PlanPoll(int(f.fleetBytes.Load()), workers)
		returned := map[string]bool{}
		if plan.Whole {
			p.FleetBytes = f.fleetSize()
			f.fleetBytes.Store(int64(p.FleetBytes))
			units += pagedUnits(p.FleetBytes)
			for id := range asked {
				returned[id] = true
			}
		}
		for _, r := range plan.Ranges {
			bytes := 0
			if r.From == "" && f.gen != 0 {
				bytes += lease.GenerationItemBytes(f.gen)
			}
			for id, w := range f.workers {
				if r.Contains(id) {
					bytes += lease.WorkerItemBytes(w)
					returned[id] = returned[id] || asked[id]
				}
			}
			units += pagedUnits(bytes)
		}
		if plan.Generation {
			units += readUnits(lease.GenerationItemBytes(f.gen), false)
		}
		for _, id := range plan.Workers {
			units += readUnits(f.workerBytes(id), false)
			returned[id] = true
		}
		for _, id := range workers {
			if w, ok := f.workers[id]; ok && returned[id] {
				p.Workers = append(p.Workers, w)
				delete(returned, id)
			}
		}
		seen := map[string]bool{}
		for _, id := range shards {
			if seen["s"+id] {
				continue
			}
			seen["s"+id] = true
			l, ok := f.leases[id]
			units += readUnits(f.leaseBytes(id), false)
			if ok {
				p.Leases = append(p.Leases, l)
			}
		}
		p.ReadUnits = units
		f.charge(units, 0)
		return nil
	})
	if err != nil {
		return lease.Polled{}, err
	}
	return p, nil
}

// Get implements lease.Store.
func (f *Fake) Get(ctx context.Context, shardID string) (lease.Lease, error) {
	var l lease.Lease
	err := f.read(ctx, "Get", shardID, func() error {
		f.charge(readUnits(f.leaseBytes(shardID), true), 0)
		got, ok := f.leases[shardID]
		if !ok {
			return fmt.Errorf("get lease %s: %w", shardID, lease.ErrNotFound)
		}
		l = got
		return nil
	})
	return l, err
}

// Create implements lease.Store.
func (f *Fake) Create(ctx context.Context, l lease.Lease) error {
	return f.call(ctx, "Create", l.ShardID, func() error {
		l = clone(l)
		l.HandoffTo = ""
		l.UpdatedAt = time.Now()
		if _, ok := f.leases[l.ShardID]; ok {
			f.charge(0, writeUnits(f.leaseBytes(l.ShardID)))
			return fmt.Errorf("create lease %s: %w", l.ShardID, lease.ErrExists)
		}
		f.put(l)
		f.charge(0, writeUnits(f.sizes[l.ShardID]))
		return nil
	})
}

// Take implements lease.Store.
func (f *Fake) Take(ctx context.Context, shardID, owner string, epoch int64) (lease.Lease, error) {
	var out lease.Lease
	err := f.call(ctx, "Take", shardID, func() error {
		l, ok := f.leases[shardID]
		if !ok || l.Epoch != epoch {
			f.charge(0, writeUnits(f.leaseBytes(shardID)))
			return fmt.Errorf("take lease %s at epoch %d: %w", shardID, epoch, lease.ErrConflict)
		}
		old := lease.LeaseItemBytes(l)
		l.Owner, l.Epoch, l.UpdatedAt = owner, l.Epoch+1, time.Now()
		f.put(l)
		f.charge(0, writeUnits(old, f.sizes[l.ShardID]))
		out = l
		return nil
	})
	return out, err
}

// RequestHandoff implements lease.Store.
func (f *Fake) RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error {
	return f.call(ctx, "RequestHandoff", shardID, func() error {
		l, ok := f.leases[shardID]
		if !ok || l.Owner != owner || l.Epoch != epoch || l.HandoffTo != "" {
			f.charge(0, writeUnits(f.leaseBytes(shardID)))
			return fmt.Errorf("request handoff of %s: %w", shardID, lease.ErrConflict)
		}
		old := lease.LeaseItemBytes(l)
		l.HandoffTo = requester
		f.put(l)
		f.charge(0, writeUnits(old, f.sizes[l.ShardID]))
		return nil
	})
}

// CancelHandoff implements lease.Store.
func (f *Fake) CancelHandoff(ctx context.Context, shardID, requester string) error {
	return f.call(ctx, "CancelHandoff", shardID, func() error {
		f.charge(0, writeUnits(f.leaseBytes(shardID)))
		if l, ok := f.leases[shardID]; ok && l.HandoffTo == requester {
			l.HandoffTo = ""
			f.put(l)
		}
		return nil
	})
}

// Transfer implements lease.Store.
func (f *Fake) Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error) {
	var e int64
	err := f.call(ctx, "Transfer", shardID, func() error {
		l, ok := f.leases[shardID]
		if !ok || l.Owner != owner || l.Epoch != epoch {
			f.charge(0, writeUnits(f.leaseBytes(shardID)))
			return fmt.Errorf("transfer lease %s at epoch %d: %w", shardID, epoch, lease.ErrLost)
		}
		if to != "" && l.HandoffTo != to {
			f.charge(0, writeUnits(f.leaseBytes(shardID)))
			return fmt.Errorf("hand lease %s to %s: request withdrawn: %w", shardID, to, lease.ErrConflict)
		}
		old := lease.LeaseItemBytes(l)
		l.Owner, l.Epoch, l.HandoffTo, l.UpdatedAt = to, l.Epoch+1, "", time.Now()
		l.Checkpoint.Position, l.Checkpoint.MillisBehind = cp.Position, cp.MillisBehind
		if len(cp.Sinks) > 0 {
			l.Checkpoint.Sinks = maps.Clone(cp.Sinks)
		}
		f.put(l)
		f.charge(0, writeUnits(old, f.sizes[l.ShardID]))
		e = l.Epoch
		return nil
	})
	return e, err
}

// Checkpoint implements lease.Store.
func (f *Fake) Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error {
	return f.call(ctx, "Checkpoint", shardID, func() error {
		l, ok := f.leases[shardID]
		if !ok || l.Owner != owner || l.Epoch != epoch {
			f.charge(0, writeUnits(f.leaseBytes(shardID)))
			return fmt.Errorf("checkpoint %s at epoch %d: %w", shardID, epoch, lease.ErrLost)
		}
		old := lease.LeaseItemBytes(l)
		l.Checkpoint.Position, l.Checkpoint.MillisBehind = cp.Position, cp.MillisBehind
		if len(cp.Sinks) > 0 {
			l.Checkpoint.Sinks = maps.Clone(cp.Sinks)
		}
		l.UpdatedAt = time.Now()
		f.put(l)
		f.charge(0, writeUnits(old, f.sizes[l.ShardID]))
		return nil
	})
}

// Heartbeat implements lease.Store.
func (f *Fake) Heartbeat(ctx context.Context, id, name string, held int, stopping, first bool) (int64, error) {
	var n int64
	err := f.call(ctx, "Heartbeat", id, func() error {
		w, ok := f.workers[id]
		if ok && w.Dead || !ok && !first {
			f.charge(0, writeUnits(f.workerBytes(id)))
			return fmt.Errorf("heartbeat %s: %w", id, lease.ErrDeclaredDead)
		}
		old := f.workerBytes(id)
		w.ID, w.Name, w.Held, w.Stopping, w.UpdatedAt = id, name, held, stopping, time.Now()
		w.Heartbeat++
		f.workers[id] = w
		f.charge(0, writeUnits(old, lease.WorkerItemBytes(w)))
		n = w.Heartbeat
		return nil
	})
	return n, err
}

// MarkDead implements lease.Store.
func (f *Fake) MarkDead(ctx context.Context, id string, counter int64) error {
	return f.call(ctx, "MarkDead", id, func() error {
		w, ok := f.workers[id]
		old := f.workerBytes(id)
		switch {
		case counter < 0 && ok, counter >= 0 && (!ok || w.Heartbeat != counter || w.Dead):
			f.charge(0, writeUnits(old))
			return fmt.Errorf("declare %s dead: %w", id, lease.ErrConflict)
		case counter < 0:
			w = lease.Worker{ID: id, Name: lease.WorkerName(id)}
		}
		w.Dead, w.UpdatedAt = true, time.Now()
		f.workers[id] = w
		f.charge(0, writeUnits(old, lease.WorkerItemBytes(w)))
		return nil
	})
}

// DeleteWorker implements lease.Store.
func (f *Fake) DeleteWorker(ctx context.Context, id string) error {
	return f.call(ctx, "DeleteWorker", id, func() error {
		f.charge(0, writeUnits(f.workerBytes(id)))
		delete(f.workers, id)
		return nil
	})
}

// DeleteDeadWorker implements lease.Store.
func (f *Fake) DeleteDeadWorker(ctx context.Context, id string) error {
	return f.call(ctx, "DeleteDeadWorker", id, func() error {
		f.charge(0, writeUnits(f.workerBytes(id)))
		if w, ok := f.workers[id]; !ok || !w.Dead {
			return fmt.Errorf("delete dead worker %s: %w", id, lease.ErrConflict)
		}
		delete(f.workers, id)
		return nil
	})
}

// Delete implements lease.Store.
func (f *Fake) Delete(ctx context.Context, shardID string) error {
	return f.call(ctx, "Delete", shardID, func() error {
		f.charge(0, writeUnits(f.leaseBytes(shardID)))
		if l, ok := f.leases[shardID]; !ok || !l.Ended() {
			return fmt.Errorf("delete lease %s: not ended: %w", shardID, lease.ErrConflict)
		}
		delete(f.leases, shardID)
		delete(f.sizes, shardID)
		f.view = nil
		return nil
	})
}

// Bump implements lease.Store.
func (f *Fake) Bump(ctx context.Context) (int64, error) {
	var g int64
	err := f.call(ctx, "Bump", "", func() error {
		f.gen++
		g = f.gen
		f.charge(0, writeUnits(lease.GenerationItemBytes(f.gen)))
		return nil
	})
	return g, err
}

// Notify implements lease.Store.
func (f *Fake) Notify(ctx context.Context, id string) error {
	return f.call(ctx, "Notify", id, func() error {
		w, ok := f.workers[id]
		f.charge(0, writeUnits(f.workerBytes(id)))
		if ok {
			w.Inbox++
			f.workers[id] = w
		}
		return nil
	})
}

var (
	_ lease.Store   = (*Fake)(nil)
	_ lease.Metered = (*Fake)(nil)
	_ lease.Metered = (*lease.DynamoStore)(nil)
)
