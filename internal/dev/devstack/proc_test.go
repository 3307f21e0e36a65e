package devstack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpawnTerminate starts a real process the way Up does and stops it
// the way Down does: detached in its own session, recorded, then stopped
// with its whole process group (a grandchild included).
func TestSpawnTerminate(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "svc.log")
	spec := launchSpec{
		// The grandchild sleep must die with the group.
		argv: []string{sh, "-c", "echo hello; sleep 300 & echo $! > " + filepath.Join(dir, "grandchild") + "; wait"},
		env:  baseEnv(dir),
		dir:  dir,
	}
	r, err := spawn("/proc", spec, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-r.PID, syscall.SIGKILL); reapIfChild(r.PID) })
	if r.StartTicks == 0 {
		t.Error("start time not recorded")
	}

	var grandchild int
	deadline := time.Now().Add(5 * time.Second)
	for grandchild == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, "grandchild")); err == nil && len(b) > 1 {
			grandchild = atoiOrZero(strings.TrimSpace(string(b)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if grandchild == 0 {
		t.Fatal("grandchild did not start")
	}
	p, err := readProc("/proc", r.PID)
	if err != nil {
		t.Fatal(err)
	}
	if p.PGID != r.PID {
		t.Errorf("pgid = %d, want own group %d", p.PGID, r.PID)
	}
	if st, why, _ := checkRecord("/proc", r); st != procOurs {
		t.Fatalf("fresh process not recognised as ours: %s", why)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := terminate(ctx, "/proc", r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, _ := alive("/proc", r.PID); ok {
		t.Error("process still alive after terminate")
	}
	if !waitGone(ctx, "/proc", grandchild, 5*time.Second) {
		t.Error("grandchild survived the group SIGTERM")
	}
	if log := tailFile(logPath, 10); !strings.Contains(log, "hello") || !strings.Contains(log, "# leasehold dev:") {
		t.Errorf("log = %q, want the header and the process output", log)
	}
}

// TestTerminateRefusesStranger checks that a record whose PID now names
// another program is never signalled.
func TestTerminateRefusesStranger(t *testing.T) {
	self, err := readProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	r := Record{PID: os.Getpid(), StartTicks: self.StartTicks, Argv: []string{"/usr/bin/node", "kinesis-local/main.js"}}
	err = terminate(context.Background(), "/proc", r, time.Second)
	if err == nil || !strings.Contains(err.Error(), "refusing to signal") {
		t.Fatalf("terminate = %v, want a refusal", err)
	}
	r = Record{PID: os.Getpid(), StartTicks: self.StartTicks + 1, Marker: self.Cmdline}
	if err := terminate(context.Background(), "/proc", r, time.Second); err == nil {
		t.Fatal("terminate signalled a process whose start time differs from the record")
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var b strings.Builder
	for i := range 100 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%3))
		b.WriteString("\n")
	}
	b.WriteString("last line\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(tailFile(path, 3), "\n")
	if len(got) != 3 || got[2] != "last line" {
		t.Errorf("tail = %q", got)
	}
	if s := tailFile(filepath.Join(t.TempDir(), "missing.log"), 3); !strings.HasPrefix(s, "(no log:") {
		t.Errorf("tail of missing file = %q", s)
	}
}

func atoiOrZero(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
