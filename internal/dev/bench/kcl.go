package bench

import "math"

// The Java KCL's lease-table traffic at rest, as a model: what each of its
// periodic tasks reads and writes at its default interval, and how big the
// items are. Every figure comes from the KCL's source at
// github.com/awslabs/amazon-kinesis-client v3.5.1 (commit 024eb86e2163),
// paths under amazon-kinesis-client/src/main/java/software/amazon/kinesis/;
// docs/BENCHMARKS.md lists them. Checkpoints are excluded, as for ours.

// KCLMode is the KCL's lease assignment mode.
type KCLMode int

const (
	// KCL2 is DEFAULT_LEASE_COUNT_BASED_ASSIGNMENT, the KCL 2.x protocol
	// (still selectable in 3.x): every worker renews its leases and scans
	// the whole table in its lease taker.
	KCL2 KCLMode = iota + 1
	// KCL3 is WORKER_UTILIZATION_AWARE_ASSIGNMENT, KCL 3.x's default: every
	// worker renews its leases, finds new ones with a query on a
	// keys-only index and reports its metrics; a leader assigns leases from
	// a scan.
	KCL3
)

func (m KCLMode) String() string {
	if m == KCL2 {
		return "KCL 2.x (lease-count taker)"
	}
	return "KCL 3.x (leader assigns, default)"
}

// KCL defaults, from the source.
const (
	// leases/LeaseManagementConfig.java: failoverTimeMillis = 10000L,
	// epsilonMillis = 25L.
	kclFailoverMillis = 10000
	kclEpsilonMillis  = 25
	// common/CommonCalculations.getRenewerTakerIntervalMillis: failover / 3
	// - epsilon (long division), the renewer's fixed rate in
	// leases/dynamodb/DynamoDBLeaseCoordinator.java: every held lease is
	// renewed (one conditional UpdateItem) every 3,308 ms.
	kclRenewMillis = kclFailoverMillis/3 - kclEpsilonMillis
	// DynamoDBLeaseCoordinator: takerIntervalMillis = (leaseDurationMillis
	// + epsilonMillis) * 2 = 20,050 ms (fixed delay); the taker
	// (leases/dynamodb/DynamoDBLeaseTaker.updateAllLeases) calls
	// listLeases, a Scan of the whole table.
	kclTakerMillis = (kclFailoverMillis + kclEpsilonMillis) * 2
	// LeaseManagementConfig.leaseAssignmentIntervalMillis() = 2 ×
	// failover: the leader's LeaseAssignmentManager (coordinator/
	// assignment/LeaseAssignmentManager.java, fixed delay) scans the lease
	// table each run.
	kclAssignMillis = 2 * kclFailoverMillis
	// DynamoDBLeaseCoordinator: leaseDiscovererIntervalMillis =
	// leaseAssignmentIntervalMillis / 2 - epsilon = 9,975 ms; the
	// discoverer (leases/dynamodb/DynamoDBLeaseDiscoverer.java) queries the
	// keys-only index LeaseOwnerToLeaseKeyIndex for the worker's leases.
	kclDiscoverMillis = kclAssignMillis/2 - kclEpsilonMillis
	// LeaseManagementConfig.WorkerUtilizationAwareAssignmentConfig:
	// workerMetricsReporterFreqInMillis = 30 s, one UpdateItem of the
	// worker's WorkerMetricStats item per report.
	kclMetricsMillis = 30000
	// LeaseManagementConfig: dynamoDbLockBasedLeaderHeartbeatPeriodInMillis
	// = 30 s. The leader heartbeats its lock item at that period;
	// leader/DynamoDBLockBasedLeaderDecider.isLeader lets a non-leader
	// read the lock (amazon-dynamodb-lock-client's getLock: a strongly
	// consistent GetItem) at most once per period.
	kclLockMillis = 30000
	// LeaseManagementConfig: leasesRecoveryAuditorExecutionFrequencyMillis
	// = DEFAULT_PERIODIC_SHARD_SYNC_INTERVAL_MILLIS = 2 min; the leader's
	// coordinator/PeriodicShardSyncManager lists the leases (a Scan).
	kclShardSyncMillis = 120000
	// coordinator/DeterministicShuffleShardSyncLeaderDecider (KCL 2.x
	// mode): every worker lists the leases every
	// ELECTION_SCHEDULING_INTERVAL_MILLIS = 5 min to elect the leaders.
	kclElectMillis = 300000
)

// attr is one attribute of a DynamoDB item: its name and the size of its
// value by DynamoDB's rules (strings: their bytes; numbers: about one byte
// per two significant digits plus one).
type attr struct {
	name  string
	value int
}

func itemBytes(attrs []attr) int {
	n := 0
	for _, a := range attrs {
		n += len(a.name) + a.value
	}
	return n
}

// KCLLeaseItemBytes is a KCL lease item at rest
// (leases/dynamodb/DynamoDBLeaseSerializer.toDynamoRecord): a shard id
// key, a UUID worker id as owner, a 56-digit checkpoint, the hash key
// range, KCL 3's throughput: about 350 bytes.
func KCLLeaseItemBytes() int {
	return itemBytes([]attr{
		{"leaseKey", len("shardId-000000000000")},
		{"leaseOwner", 36}, // a UUID, as the KCL samples configure
		{"leaseCounter", 4},
		{"ownerSwitchesSinceCheckpoint", 2},
		{"checkpoint", 56},
		{"checkpointSubSequenceNumber", 2},
		{"startingHashKey", 38},
		{"endingHashKey", 39},
		{"throughputKBps", 4},
		{"entityType", len("LEASE")},
	})
}

// kclIndexItemBytes is one entry of the keys-only index the discoverer
// queries: the owner and the lease key.
func kclIndexItemBytes() int {
	return itemBytes([]attr{{"leaseOwner", 36}, {"leaseKey", len("shardId-000000000000")}})
}

// kclMetricsItemBytes is a WorkerMetricStats item
// (worker/metricstats/WorkerMetricStats.java): key and "wid" (the worker
// id), "lut", "sts" (10 persisted values of one metric), "opr": about 230
// bytes, one write unit.
func kclMetricsItemBytes() int {
	return itemBytes([]attr{
		{"leaseKey", 36}, {"wid", 36}, {"entityType", len("WORKER_METRIC_STATS")}, {"lut", 6},
		{"sts", 3 + 1 + 3 + 10*9}, {"opr", 3 + 1 + 3 + 3},
	})
}

// readUnitsEC is what an eventually consistent Scan or Query returning
// bytes costs: half a unit per 4 KB, rounded up per 1 MB page.
func readUnitsEC(bytes int) float64 {
	u := 0.0
	for ; bytes > 1<<20; bytes -= 1 << 20 {
		u += 128
	}
	return u + 0.5*math.Ceil(float64(max(bytes, 1))/4096)
}

func perHour(millis int) float64 { return 3600e3 / float64(millis) }

// KCLAtRest returns the read and write request units per hour that the
// Java KCL's lease coordination consumes at rest with shards leases and
// workers workers (spread evenly), in the given mode. Writes: every lease
// renewed every 3,308 ms (one unit each: the item is under 1 KB); in KCL 3
// also a metrics report per worker every 30 s and the leader's lock
// heartbeat. Reads (eventually consistent unless noted): KCL 2 — every
// worker's taker scans the whole table every 20,050 ms, every worker's
// leader election scans it every 5 min, the leader's shard sync every 2
// min; KCL 3 — every worker queries the index for its own leases every
// 9,975 ms, the leader scans leases and worker metrics every 20 s and for
// shard sync every 2 min, non-leaders read the lock (strongly consistent,
// one unit) every 30 s.
func KCLAtRest(mode KCLMode, shards, workers int) (read, write float64) {
	s, w := float64(shards), float64(workers)
	leases := shards * KCLLeaseItemBytes()
	write = s * perHour(kclRenewMillis)
	switch mode {
	case KCL2:
		read = w*perHour(kclTakerMillis)*readUnitsEC(leases) +
			w*perHour(kclElectMillis)*readUnitsEC(leases) +
			perHour(kclShardSyncMillis)*readUnitsEC(leases)
	case KCL3:
		table := leases + workers*kclMetricsItemBytes()
		own := (shards + workers - 1) / workers
		write += w*perHour(kclMetricsMillis)*math.Ceil(float64(kclMetricsItemBytes())/1024) + perHour(kclLockMillis)
		read = w*perHour(kclDiscoverMillis)*readUnitsEC(own*kclIndexItemBytes()) +
			perHour(kclAssignMillis)*readUnitsEC(table) +
			perHour(kclShardSyncMillis)*readUnitsEC(table) +
			(w-1)*perHour(kclLockMillis)*1
	}
	return read, write
}

// Dollars per shard-month of units per hour at the on-demand prices.
func dollarsPerShardMonth(readPerHour, writePerHour float64, shards int) float64 {
	return (readPerHour*readPrice + writePerHour*writePrice) * hoursPerMonth / float64(shards)
}
