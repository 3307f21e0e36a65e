// Package lease shares a Kinesis stream's shards among workers through a
// lease table. There is one lease item per shard and one worker item per
// live worker; every mutation is a conditional write (see docs/LEASES.md).
//
// Safety rests on two counters:
//
//   - a lease's Epoch changes whenever its ownership changes (take,
//     handoff, release), and every checkpoint is conditional on the epoch
//     its writer was granted, so a worker that lost a lease (a zombie) can
//     never advance its checkpoint;
//   - a worker's Heartbeat counter is incremented every renew interval.
//     Others judge a worker dead when they have not seen its counter change
//     for the lease duration on their own monotonic clock; wall-clock
//     timestamps written by other hosts are never compared.
//
// One heartbeat per worker, not one renewal per lease, keeps DynamoDB cost
// at rest independent of the number of shards.
package lease

import (
	"context"
	"errors"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

// Sentinel errors of the lease store.
var (
	// ErrConflict: a conditional write failed because the item changed
	// since it was read (another worker got there first).
	ErrConflict = errors.New("lease: changed by another worker")
	// ErrLost: the caller no longer owns the lease at the epoch it holds.
	ErrLost = errors.New("lease: lost to another worker")
	// ErrExists: the lease to create is already in the table.
	ErrExists = errors.New("lease: already exists")
	// ErrNotFound: no such lease.
	ErrNotFound = errors.New("lease: not found")
)

// Lease is one shard's lease item.
type Lease struct {
	ShardID string
	// Owner is the worker holding the lease, "" when unowned.
	Owner string
	// Epoch is incremented by every ownership change; checkpoints are
	// fenced on it.
	Epoch int64
	// Checkpoint is how far the shard is processed; its Position is a
	// sentinel (TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END) or a record.
	Checkpoint checkpoint.Checkpoint
	// Parents are the shards this one was split or merged from. It may be
	// processed only once every parent's lease has reached SHARD_END.
	Parents []string
	// HandoffTo names a worker that asked the owner to hand this lease
	// over for balance; "" when no request is pending.
	HandoffTo string
	// UpdatedAt is the writer's wall clock at the last change. It is shown
	// to people and never used to judge expiry.
	UpdatedAt time.Time
}

// Ended reports whether the shard is fully processed.
func (l Lease) Ended() bool { return l.Checkpoint.Position.Ended() }

// Worker is one worker item: a liveness counter and what the worker says
// about itself.
type Worker struct {
	ID string
	// Heartbeat is incremented on every renewal.
	Heartbeat int64
	// Held is the number of leases the worker held at its last heartbeat
	// (informational).
	Held int
	// Stopping is set by a worker that is shutting down: peers no longer
	// count it when balancing and take the leases it releases.
	Stopping bool
	// UpdatedAt is the worker's own wall clock at the last heartbeat; shown
	// to people, never used to judge expiry.
	UpdatedAt time.Time
}

// Snapshot is the whole table at one read.
type Snapshot struct {
	Leases  []Lease
	Workers []Worker
}

// Store is the lease table. Every method blocks on one or a few round trips
// and is safe for concurrent use. Conditional failures are reported with
// the sentinels above; other errors are transport or service errors,
// classified by the caller.
type Store interface {
	// EnsureTable creates the table if it is missing and waits until it is
	// usable. Several workers may call it at once; all succeed.
	EnsureTable(ctx context.Context) error
	// Snapshot reads every lease and worker item (a consistent Scan).
	Snapshot(ctx context.Context) (Snapshot, error)
	// Get reads one lease (strongly consistent); ErrNotFound if absent.
	Get(ctx context.Context, shardID string) (Lease, error)
	// Create adds a lease with epoch 0 and no owner unless l.Owner is set;
	// ErrExists if the shard already has one.
	Create(ctx context.Context, l Lease) error
	// Take gives the lease to owner if its epoch is still epoch, clearing
	// any handoff request, and returns the lease as written (epoch+1).
	// ErrConflict if the epoch moved.
	Take(ctx context.Context, shardID, owner string, epoch int64) (Lease, error)
	// RequestHandoff asks owner (at epoch) to hand the lease to requester.
	// ErrConflict if the lease moved or another request is pending.
	RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error
	// CancelHandoff clears a pending request from requester; no error if
	// there is none.
	CancelHandoff(ctx context.Context, shardID, requester string) error
	// Transfer writes cp and moves the lease from owner (at epoch) to to in
	// one conditional write; to == "" releases it. It clears any handoff
	// request and returns the new epoch. ErrLost if owner no longer holds
	// the lease at epoch.
	Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error)
	// Checkpoint writes cp if owner still holds the lease at epoch; ErrLost
	// otherwise.
	Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error
	// Heartbeat increments the worker's counter (creating the item if
	// needed) and records held and stopping; it returns the new counter.
	Heartbeat(ctx context.Context, workerID string, held int, stopping bool) (int64, error)
	// DeleteWorker removes the worker item, on clean shutdown.
	DeleteWorker(ctx context.Context, workerID string) error
	// Delete removes a lease, used for ended shards the stream no longer
	// lists.
	Delete(ctx context.Context, shardID string) error
}
