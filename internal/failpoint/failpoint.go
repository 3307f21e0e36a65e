//go:build failpoint

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Enabled reports whether failpoints are compiled in.
const Enabled = true

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
