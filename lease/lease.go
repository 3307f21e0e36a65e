// Package lease shares a Kinesis stream's shards among workers through a
// lease table. There is one lease item per shard, one worker item per
// running worker process and one small fleet item; every mutation is a
// conditional write (see docs/LEASES.md).
//
// Safety rests on three things:
//
//   - a lease's Epoch changes whenever its ownership changes (take,
//     handoff, release), and every checkpoint and transfer is conditional
//     on the epoch its writer was granted, so a worker that lost a lease (a
//     zombie) can never advance its checkpoint;
//   - a worker's Heartbeat counter is incremented every renew interval, and
//     a worker stops processing every shard on its own timer once its last
//     successful heartbeat was sent more than Duration - SafetyMargin ago,
//     whatever its table calls are doing;
//   - a peer declares a worker dead only after watching its counter stay
//     unchanged for the whole lease duration on its own monotonic clock
//     (timed from the read that was sent last, so a late answer never makes
//     a live worker look old), and only by a conditional write that fails
//     if the counter moved. A worker's leases are taken only once it is
//     declared dead; its own heartbeat fails from then on, so it knows.
//
// Each process has an incarnation of its own: the owner written in the
// table is "<worker id>~<incarnation>", so two processes that share a
// worker id never take each other's leases, and a restarted worker waits
// for its previous incarnation to be declared dead like any other peer.
//
// One heartbeat per worker, not one renewal per lease, keeps writes at rest
// independent of the number of shards; a small generation item that every
// change bumps, polled with a cheap eventually consistent read, keeps reads
// at rest independent of the number of workers times shards.
package lease

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
)

// Sentinel errors of the lease store.
var (
	// ErrConflict: a conditional write failed because the item changed
	// since it was read (another worker got there first, or a handoff
	// request was withdrawn).
	ErrConflict = errors.New("lease: changed by another worker")
	// ErrLost: the caller no longer owns the lease at the epoch it holds.
	ErrLost = errors.New("lease: lost to another worker")
	// ErrExists: the lease to create is already in the table.
	ErrExists = errors.New("lease: already exists")
	// ErrNotFound: no such lease.
	ErrNotFound = errors.New("lease: not found")
	// ErrDeclaredDead: a peer declared this worker incarnation dead (its
	// heartbeat had not changed for the lease duration); its leases are
	// being taken. The incarnation must stop every shard at once.
	ErrDeclaredDead = errors.New("lease: declared dead by a peer")
	// ErrFenced: the worker stopped processing a shard because its last
	// successful heartbeat is older than Duration - SafetyMargin.
	ErrFenced = errors.New("lease: heartbeat too old; fenced")
)

// Lease is one shard's lease item.
type Lease struct {
	ShardID string
	// Owner is the worker incarnation holding the lease
	// ("<worker id>~<incarnation>", see WorkerName), "" when unowned.
	Owner string
	// Epoch is incremented by every ownership change; checkpoints are
	// fenced on it.
	Epoch int64
	// Checkpoint is how far the shard is processed; its Position is a
	// sentinel (TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END) or a record.
	Checkpoint checkpoint.Checkpoint
	// Parents are the shards this one was split or merged from. It may be
	// processed only once every parent's lease has reached SHARD_END or is
	// gone from the table.
	Parents []string
	// HandoffTo names a worker incarnation that asked the owner to hand
	// this lease over for balance; "" when no request is pending.
	HandoffTo string
	// UpdatedAt is the writer's wall clock at the last change. It is shown
	// to people and never used to judge expiry; a new owner paces its
	// first read by it, by at most one read interval (Grant.HandedAt).
	UpdatedAt time.Time
}

// Ended reports whether the shard is fully processed.
func (l Lease) Ended() bool { return l.Checkpoint.Position.Ended() }

// Worker is one worker item: a liveness counter and what the worker
// incarnation says about itself.
type Worker struct {
	// ID is the incarnation's identity, "<worker id>~<incarnation>", the
	// value leases name as Owner and HandoffTo.
	ID string
	// Name is the configured worker id (for people, logs and metrics).
	Name string
	// Heartbeat is incremented on every renewal.
	Heartbeat int64
	// Held is the number of leases the worker held at its last heartbeat
	// (informational).
	Held int
	// Stopping is set by a worker that is shutting down: peers no longer
	// count it when balancing and take the leases it releases.
	Stopping bool
	// Dead is set by a peer that saw the heartbeat unchanged for the lease
	// duration; the incarnation's leases may then be taken by anyone.
	Dead bool
	// Inbox is bumped by a peer that asked this worker for a lease, so the
	// worker (which polls its own item) looks at the table.
	Inbox int64
	// UpdatedAt is the worker's own wall clock at the last heartbeat; shown
	// to people, never used to judge expiry.
	UpdatedAt time.Time
}

// Snapshot is the whole table at one eventually consistent read.
type Snapshot struct {
	Leases  []Lease
	Workers []Worker
	// Generation is the fleet item's counter, bumped after every change
	// peers must react to (see Store.Bump).
	Generation int64
	// ReadUnits is what the read cost, in DynamoDB read request units
	// (0 when the store cannot tell).
	ReadUnits float64
	// FleetBytes is the size of the fleet partition (the generation and
	// every worker item, by DynamoDB's item size rules): what a Query of
	// it would be billed for (see PlanPoll).
	FleetBytes int
}

// Polled is the answer to Store.Poll: the generation and the items asked
// for that exist.
type Polled struct {
	Generation int64
	Workers    []Worker
	Leases     []Lease
	ReadUnits  float64
	// FleetBytes is the fleet partition's size when the poll read all of
	// it (a Query), else 0.
	FleetBytes int
}

// Store is the lease table. Every method blocks on one or a few round trips
// and is safe for concurrent use. Conditional failures are reported with
// the sentinels above; other errors are transport or service errors,
// classified by the caller (see Retryable).
type Store interface {
	// EnsureTable creates the table if it is missing and waits until it is
	// usable. Several workers may call it at once; all succeed.
	EnsureTable(ctx context.Context) error
	// Snapshot reads every lease and worker item and the generation with an
	// eventually consistent Scan: a lease may show an older epoch than the
	// table holds, never a newer one.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Poll reads the generation, the named worker items — the caller's
	// own identity first, then the ring successors it watches, in ring
	// order — and the named leases, eventually consistent: the generation
	// and the workers by the cheapest of a Query of the whole fleet
	// partition, a Query of the identity range of the ring, or a batch
	// read (PlanPoll), the leases by a batch read. Items that do not
	// exist, and workers not named, are left out.
	Poll(ctx context.Context, workers, shards []string) (Polled, error)
	// Get reads one lease (strongly consistent); ErrNotFound if absent.
	Get(ctx context.Context, shardID string) (Lease, error)
	// Create adds a lease with epoch 0 and no owner unless l.Owner is set;
	// ErrExists if the shard already has one.
	Create(ctx context.Context, l Lease) error
	// Take gives the lease to owner if its epoch is still epoch and
	// returns the lease as written (epoch+1). A pending handoff request
	// stays: it asks whoever owns the lease, and the new owner decides.
	// ErrConflict if the epoch moved.
	Take(ctx context.Context, shardID, owner string, epoch int64) (Lease, error)
	// RequestHandoff asks owner (at epoch) to hand the lease to requester.
	// ErrConflict if the lease moved or another request is pending.
	RequestHandoff(ctx context.Context, shardID, owner string, epoch int64, requester string) error
	// CancelHandoff clears a pending request from requester; no error if
	// there is none.
	CancelHandoff(ctx context.Context, shardID, requester string) error
	// Transfer writes cp and moves the lease from owner (at epoch) to `to`
	// in one conditional write; to == "" releases it. Handing over (to !=
	// "") also requires to's request to be still pending. It clears any
	// handoff request and returns the new epoch. ErrLost if owner no longer
	// holds the lease at epoch; ErrConflict if it does but to's request
	// was withdrawn.
	Transfer(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint, to string) (int64, error)
	// Checkpoint writes cp if owner still holds the lease at epoch; ErrLost
	// otherwise.
	Checkpoint(ctx context.Context, shardID, owner string, epoch int64, cp checkpoint.Checkpoint) error
	// Heartbeat increments the worker incarnation's counter and records
	// its name, held and stopping; it returns the new counter. The first
	// heartbeat of an incarnation creates its item; later ones require it:
	// ErrDeclaredDead if a peer declared it dead (or the item was swept
	// away after that).
	Heartbeat(ctx context.Context, id, name string, held int, stopping, first bool) (int64, error)
	// MarkDead declares worker incarnation id dead if its counter is still
	// counter (counter < 0: if it has no item, by writing a dead one).
	// ErrConflict if the counter moved, the item appeared, or it is dead
	// already.
	MarkDead(ctx context.Context, id string, counter int64) error
	// DeleteWorker removes the worker item, on clean shutdown.
	DeleteWorker(ctx context.Context, id string) error
	// DeleteDeadWorker removes a worker item marked dead; ErrConflict if
	// it is not marked dead.
	DeleteDeadWorker(ctx context.Context, id string) error
	// Delete removes a lease that has reached SHARD_END; ErrConflict if it
	// has not.
	Delete(ctx context.Context, shardID string) error
	// Bump increments the fleet generation and returns it.
	Bump(ctx context.Context) (int64, error)
	// Notify bumps worker id's inbox, telling it a request waits on one
	// of its leases; no error if the worker has no item.
	Notify(ctx context.Context, id string) error
}

// Units is lease-table capacity consumed, as DynamoDB bills it.
type Units struct {
	Read, Write float64
}

// Metered is implemented by stores that count the capacity their calls
// consumed.
type Metered interface {
	Units() Units
}

// incarnationSep separates the worker id from the incarnation in an
// identity.
const incarnationSep = "~"

// WorkerName returns the worker id part of an owner identity
// ("w1~3f9a2c01" → "w1"); an identity without an incarnation is returned
// as is.
func WorkerName(identity string) string {
	if i := strings.LastIndex(identity, incarnationSep); i >= 0 {
		return identity[:i]
	}
	return identity
}
