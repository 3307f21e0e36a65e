// Package failpoint lets tests crash a process at an exact stage, the way a
// SIGKILL would but deterministically: a random kill almost never lands in
// the millisecond between a sink's write and the checkpoint, so tests of
// "no loss, duplicates only as promised" need to aim.
//
// Set LEASEHOLD_FAILPOINT=<name> (optionally <name>@<n> to fire on the n-th
// hit, default 1). When code reaches Hit(name) that many times the process
// exits at once with status 137 (as if killed), without deferred cleanup.
// Unset, Hit costs one atomic load.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

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

var (
	once    sync.Once
	name    string
	fireAt  int64
	counter atomic.Int64
	armed   atomic.Bool
)

func load() {
	v := os.Getenv("LEASEHOLD_FAILPOINT")
	if v == "" {
		return
	}
	n, at, ok := strings.Cut(v, "@")
	fireAt = 1
	if ok {
		if x, err := strconv.ParseInt(at, 10, 64); err == nil && x > 0 {
			fireAt = x
		}
	}
	name = n
	armed.Store(true)
}

// Hit exits the process if the failpoint named by LEASEHOLD_FAILPOINT is
// name and this is the configured hit. Safe for concurrent use.
func Hit(stage string) {
	once.Do(load)
	if !armed.Load() || stage != name {
		return
	}
	if counter.Add(1) == fireAt {
		fmt.Fprintf(os.Stderr, "failpoint %s: exiting\n", stage)
		os.Exit(137)
	}
}
