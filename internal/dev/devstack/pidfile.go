package devstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Record is what <dir>/run/<service>.pid holds about a server the stack
// started: enough to find it again and to be sure a PID still names it.
type Record struct {
	Service string `json:"service"`
	PID     int    `json:"pid"`
	// StartTicks is field 22 of /proc/<pid>/stat (start time in clock ticks
	// since boot). A reused PID has a different value.
	StartTicks uint64 `json:"start_ticks"`
	// Argv is the command line the server was started with.
	Argv []string `json:"argv"`
	// Marker is a string /proc/<pid>/cmdline must contain. It is the whole
	// command line, except for servers that exec another program (the
	// OpenSearch script execs java), where it names our instance.
	Marker   string    `json:"marker,omitempty"`
	Endpoint string    `json:"endpoint"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
}

// writeRecord writes r to path atomically (a temporary file renamed over
// it), so a reader never sees half a record.
func writeRecord(path string, r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// readRecord reads the record at path. A missing file is an error wrapping
// os.ErrNotExist; a file that is not a valid record is another error.
func readRecord(path string) (Record, error) {
	var r Record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read pid file: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read pid file %s: %w", path, err)
	}
	if r.PID <= 1 {
		return r, fmt.Errorf("read pid file %s: invalid pid %d", path, r.PID)
	}
	return r, nil
}

// procInfo is what the stack reads about a live process from /proc.
type procInfo struct {
	State      byte // R, S, D, Z, T, ...
	PGID       int
	StartTicks uint64
	Cmdline    string // arguments joined by single spaces
}

// errNoProcess means no process has that PID.
var errNoProcess = errors.New("devstack: no such process")

// readProc reads /proc/<pid>/stat and cmdline under root. It returns an
// error wrapping errNoProcess when the process does not exist.
func readProc(root string, pid int) (procInfo, error) {
	var p procInfo
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if errors.Is(err, os.ErrNotExist) {
		return p, fmt.Errorf("read process %d: %w", pid, errNoProcess)
	}
	if err != nil {
		return p, fmt.Errorf("read process %d: %w", pid, err)
	}
	p, err = parseStat(string(stat))
	if err != nil {
		return p, fmt.Errorf("read process %d: %w", pid, err)
	}
	cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if errors.Is(err, os.ErrNotExist) {
		return p, fmt.Errorf("read process %d: %w", pid, errNoProcess)
	}
	if err != nil {
		return p, fmt.Errorf("read process %d: %w", pid, err)
	}
	p.Cmdline = strings.Join(strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00"), " ")
	return p, nil
}

// parseStat parses the fields the stack needs from /proc/<pid>/stat. The
// command name (field 2) is in parentheses and may itself contain spaces
// and parentheses, so fields are counted from the last ')'.
func parseStat(stat string) (procInfo, error) {
	var p procInfo
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return p, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return p, fmt.Errorf("malformed stat %q", stat)
	}
	p.State = f[0][0]
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return p, fmt.Errorf("malformed stat pgrp %q", f[2])
	}
	p.PGID = pgid
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return p, fmt.Errorf("malformed stat starttime %q", f[19])
	}
	p.StartTicks = st
	return p, nil
}

// procState is what a PID file says about its process once checked.
type procState int

const (
	// procOurs: the process is alive and is the one the record describes.
	procOurs procState = iota
	// procGone: no process has the PID, or it has exited (a zombie).
	procGone
	// procOther: the PID now belongs to another process.
	procOther
)

// checkRecord tells whether r still describes a live process, reading
// /proc under root. Only procOurs allows signalling r.PID. The string
// explains a procGone or procOther verdict.
func checkRecord(root string, r Record) (procState, string, error) {
	p, err := readProc(root, r.PID)
	if errors.Is(err, errNoProcess) {
		return procGone, fmt.Sprintf("process %d has exited", r.PID), nil
	}
	if err != nil {
		return procGone, "", err
	}
	return judge(p, r)
}

// judge compares a live process with the record of the one we started.
func judge(p procInfo, r Record) (procState, string, error) {
	if p.State == 'Z' || p.State == 'X' {
		return procGone, fmt.Sprintf("process %d has exited", r.PID), nil
	}
	if r.StartTicks != 0 && p.StartTicks != r.StartTicks {
		return procOther, fmt.Sprintf("pid %d was reused by another process (start time %d, recorded %d)", r.PID, p.StartTicks, r.StartTicks), nil
	}
	marker := r.Marker
	if marker == "" {
		marker = strings.Join(r.Argv, " ")
	}
	if marker == "" || !strings.Contains(p.Cmdline, marker) {
		return procOther, fmt.Sprintf("pid %d runs %q, not the recorded %q", r.PID, p.Cmdline, marker), nil
	}
	return procOurs, "", nil
}
