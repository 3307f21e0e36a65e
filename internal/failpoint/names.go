// Package failpoint lets tests crash a process at an exact stage, the way a
// SIGKILL would but deterministically: a random kill almost never lands in
// the millisecond between a sink's write and the checkpoint, so tests of
// "no loss, duplicates only as promised" need to aim.
//
// Set LEASEHOLD_FAILPOINT=<name> (optionally <name>@<n> to fire on the n-th
// hit, default 1). When code reaches Hit(name) that many times the process
// exits at once with status 137 (as if killed), without deferred cleanup.
// Unset, Hit costs one atomic load.
//
// Failpoints are compiled in only with the build tag `failpoint` (the
// integration tests build their worker binary with it). In any other
// build Hit does nothing and LEASEHOLD_FAILPOINT has no effect, so no
// production binary or program embedding leasehold can be made to exit by
// its environment.
package failpoint

// Names of the stages the worker and the collector expose.
const (
	// AfterProcess: records were handed to the processor (and, for
	// synchronous sinks, written) but not yet checkpointed.
	AfterProcess = "worker.after-process"
	// AfterFlush: a flush made records durable; the checkpoint is not
	// written yet.
	AfterFlush = "worker.after-flush"
	// BeforeCheckpoint: the sinks reported records durable (S3 objects
	// written, documents indexed); the checkpoint covering them is about
	// to be written. A crash here makes the next owner replay records the
	// sinks already have: the test of idempotent sinks.
	BeforeCheckpoint = "worker.before-checkpoint"
	// AfterCheckpoint: a checkpoint was written.
	AfterCheckpoint = "worker.after-checkpoint"

	// CollectorAfterSpool: a request's events are fsynced in the
	// collector's spool; the 202 is not sent yet.
	CollectorAfterSpool = "collector.after-spool"
	// CollectorBeforeSpoolDone: Kinesis confirmed an event; its done mark
	// is not recorded in the spool yet. A crash here sends it again on
	// the next start: the spool's one at-least-once window.
	CollectorBeforeSpoolDone = "collector.before-spool-done"
)
