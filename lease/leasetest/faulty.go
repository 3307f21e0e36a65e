package leasetest

import (
	"context"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
)

// Faulty wraps a store the way one worker sees it, to inject that worker's
// faults: a partition, a hung or slow table, errors. Before runs ahead of
// every call: a non-nil error is returned without calling the store, and
// it may block (return when ctx ends, like a call whose answer never
// comes). After runs once the store answered: it may block (the answer
// comes back late: the store already applied the call) and a non-nil
// error replaces the answer (it was lost on the way back). Either may be
// nil. Safe for concurrent use if the hooks are.
type Faulty struct {
	lease.Store
	Before func(ctx context.Context, method string) error
	After  func(ctx context.Context, method string, err error) error
}

func (f *Faulty) before(ctx context.Context, m string) error {
	if f.Before != nil {
		if err := f.Before(ctx, m); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (f *Faulty) after(ctx context.Context, m string, err error) error {
	if f.After != nil {
		if aerr := f.After(ctx, m, err); aerr != nil {
			return aerr
		}
	}
	return err
}

// EnsureTable implements lease.Store.
func (f *Faulty) EnsureTable(ctx context.Context) error {
	if err := f.before(ctx, "EnsureTable"); err != nil {
		return err
	}
	return f.after(ctx, "EnsureTable", f.Store.EnsureTable(ctx))
}

// Snapshot implements lease.Store.
func (f *Faulty) Snapshot(ctx context.Context) (lease.Snapshot, error) {
	if err := f.before(ctx, "Snapshot"); err != nil {
		return lease.Snapshot{}, err
	}
	s, err := f.Store.Snapshot(ctx)
	if err = f.after(ctx, "Snapshot", err); err != nil {
		return lease.Snapshot{}, err
	}
	return s, nil
}

// Poll implements lease.Store.
func (f *Faulty) Poll(ctx context.Context, workers, shards []string) (lease.Polled, error) {
	if err := f.before(ctx, "Poll"); err != nil {
		return lease.Polled{}, err
	}
	p, err := f.Store.Poll(ctx, workers, shards)
	if err = f.after(ctx, "Poll", err); err != nil {
		return lease.Polled{}, err
	}
	return p, nil
}

// Get implements lease.Store.
func (f *Faulty) Get(ctx context.Context, shardID string) (lease.Lease, error) {
	if err := f.before(ctx, "Get"); err != nil {
		return lease.Lease{}, err
	}
	l, err := f.Store.Get(ctx, shardID)
	if err = f.after(ctx, "Get", err); err != nil {
		return lease.Lease{}, err
	}
	return l, nil
}

// Create implements lease.Store.
func (f *Faulty) Create(ctx context.Context, l lease.Lease) error {
	if err := f.before(ctx, "Create"); err != nil {
		return err
	}
	return f.after(ctx, "Create", f.Store.Create(ctx, l))
}

// Take implements lease.Store.
func (f *Faulty) Take(ctx context.Context, shardID, owner string, epoch int64) (lease.Lease, error) {
	if err := f.before(ctx, "Take"); err != nil {
		return lease.Lease{}, err
	}
	l, err := f.Store.Take(ctx, shardID, owner, epoch)
	if err = f.after(ctx, "Take", err); err != nil {
		return lease.Lease{}, err
	}
	return l, nil
}

// RequestHandoff implements lease.Store.
func (f *Faulty) RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error {
	if err := f.before(ctx, "RequestHandoff"); err != nil {
		return err
	}
	return f.after(ctx, "RequestHandoff", f.Store.RequestHandoff(ctx, shardID, owner, epoch, requester))
}

// CancelHandoff implements lease.Store.
func (f *Faulty) CancelHandoff(ctx context.Context, shardID, requester string) error {
	if err := f.before(ctx, "CancelHandoff"); err != nil {
		return err
	}
	return f.after(ctx, "CancelHandoff", f.Store.CancelHandoff(ctx, shardID, requester))
}

// Transfer implements lease.Store.
func (f *Faulty) Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error) {
	if err := f.before(ctx, "Transfer"); err != nil {
		return 0, err
	}
	e, err := f.Store.Transfer(ctx, shardID, owner, epoch, cp, to)
	if err = f.after(ctx, "Transfer", err); err != nil {
		return 0, err
	}
	return e, nil
}

// Checkpoint implements lease.Store.
func (f *Faulty) Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error {
	if err := f.before(ctx, "Checkpoint"); err != nil {
		return err
	}
	return f.after(ctx, "Checkpoint", f.Store.Checkpoint(ctx, shardID, owner, epoch, cp))
}

// Heartbeat implements lease.Store.
func (f *Faulty) Heartbeat(ctx context.Context, id, name string, held int, stopping, first bool) (int64, error) {
	if err := f.before(ctx, "Heartbeat"); err != nil {
		return 0, err
	}
	n, err := f.Store.Heartbeat(ctx, id, name, held, stopping, first)
	if err = f.after(ctx, "Heartbeat", err); err != nil {
		return 0, err
	}
	return n, nil
}

// MarkDead implements lease.Store.
func (f *Faulty) MarkDead(ctx context.Context, id string, counter int64) error {
	if err := f.before(ctx, "MarkDead"); err != nil {
		return err
	}
	return f.after(ctx, "MarkDead", f.Store.MarkDead(ctx, id, counter))
}

// DeleteWorker implements lease.Store.
func (f *Faulty) DeleteWorker(ctx context.Context, id string) error {
	if err := f.before(ctx, "DeleteWorker"); err != nil {
		return err
	}
	return f.after(ctx, "DeleteWorker", f.Store.DeleteWorker(ctx, id))
}

// DeleteDeadWorker implements lease.Store.
func (f *Faulty) DeleteDeadWorker(ctx context.Context, id string) error {
	if err := f.before(ctx, "DeleteDeadWorker"); err != nil {
		return err
	}
	return f.after(ctx, "DeleteDeadWorker", f.Store.DeleteDeadWorker(ctx, id))
}

// Delete implements lease.Store.
func (f *Faulty) Delete(ctx context.Context, shardID string) error {
	if err := f.before(ctx, "Delete"); err != nil {
		return err
	}
	return f.after(ctx, "Delete", f.Store.Delete(ctx, shardID))
}

// Bump implements lease.Store.
func (f *Faulty) Bump(ctx context.Context) (int64, error) {
	if err := f.before(ctx, "Bump"); err != nil {
		return 0, err
	}
	g, err := f.Store.Bump(ctx)
	if err = f.after(ctx, "Bump", err); err != nil {
		return 0, err
	}
	return g, nil
}

// Notify implements lease.Store.
func (f *Faulty) Notify(ctx context.Context, id string) error {
	if err := f.before(ctx, "Notify"); err != nil {
		return err
	}
	return f.after(ctx, "Notify", f.Store.Notify(ctx, id))
}

// Hang blocks until ctx ends and returns its error: a request that is
// accepted and never answered.
func Hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
