package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// launchSpec is how to start one server.
type launchSpec struct {
	argv []string
	env  []string
	dir  string
	// cred, when set, runs the server as another user (OpenSearch as root).
	cred *syscall.Credential
	// marker overrides the command-line check; see Record.Marker.
	marker string
}

// spawn starts spec detached from the caller: in a new session (so it has
// its own process group and no controlling terminal, and survives the
// caller's exit), stdin from /dev/null, stdout and stderr to logPath
// (truncated). It returns the record to store in the PID file. It does not
// wait for the server; the caller never calls Wait and reaps through
// reapIfChild.
func spawn(root string, spec launchSpec, logPath string) (Record, error) {
	var r Record
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return r, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return r, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "# leasehold dev: %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(spec.argv, " "))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return r, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	defer devnull.Close()

	// exec.Command, not CommandContext: the server must outlive ctx.
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.Stdin = devnull
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: spec.cred}
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	pid := cmd.Process.Pid
	// We track the child by PID from here on (see reapIfChild), so the
	// os.Process handle (a pidfd on Linux) is released at once.
	cmd.Process.Release()

	r = Record{PID: pid, Argv: spec.argv, Marker: spec.marker, Started: time.Now().UTC()}
	if p, err := readProc(root, pid); err == nil {
		r.StartTicks = p.StartTicks
	}
	return r, nil
}

// reapIfChild collects the exit status of pid if it is a child of this
// process that has exited; it never blocks. It returns "" when pid is
// still running or not our child.
func reapIfChild(pid int) string {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if err != nil || got != pid {
		return ""
	}
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %s", ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// alive reports whether the process pid exists and is not a zombie,
// reaping it first if it is our exited child.
func alive(root string, pid int) (bool, string) {
	if status := reapIfChild(pid); status != "" {
		return false, status
	}
	p, err := readProc(root, pid)
	if err != nil {
		return false, "exited"
	}
	if p.State == 'Z' || p.State == 'X' {
		return false, "exited"
	}
	return true, ""
}

// terminate stops the process r describes: SIGTERM to its process group,
// then SIGKILL when it is still alive after grace. It signals only after
// checkRecord has confirmed the PID is ours, and signals the group only
// when the process leads it (as spawn arranges). It blocks until the
// process is gone or ctx ends. An error means the process may still run.
func terminate(ctx context.Context, root string, r Record, grace time.Duration) error {
	st, why, err := checkRecord(root, r)
	if err != nil {
		return fmt.Errorf("stop pid %d: %w", r.PID, err)
	}
	if st != procOurs {
		return fmt.Errorf("stop pid %d: refusing to signal: %s", r.PID, why)
	}
	target := r.PID
	if p, err := readProc(root, r.PID); err == nil && p.PGID == r.PID {
		target = -r.PID // the whole group: the server and anything it forked
	}
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop pid %d: SIGTERM: %w", r.PID, err)
	}
	if waitGone(ctx, root, r.PID, grace) {
		killGroupRest(target)
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stop pid %d: %w", r.PID, err)
	}
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop pid %d: SIGKILL: %w", r.PID, err)
	}
	if !waitGone(ctx, root, r.PID, 5*time.Second) {
		return fmt.Errorf("stop pid %d: still running 5s after SIGKILL", r.PID)
	}
	return nil
}

// killGroupRest kills what is left of a process group whose leader has
// exited (a grandchild that ignored SIGTERM). target is -pgid or a plain
// PID; a plain PID has no group to clean up.
func killGroupRest(target int) {
	if target >= 0 {
		return
	}
	if syscall.Kill(target, 0) == nil {
		syscall.Kill(target, syscall.SIGKILL)
	}
}

// waitGone polls until pid is gone or a zombie, for at most d. It reports
// whether the process is gone.
func waitGone(ctx context.Context, root string, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if ok, _ := alive(root, pid); !ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// baseEnv is the environment every server starts with: the caller's PATH
// and locale only, so stray variables (AWS_*, NODE_OPTIONS,
// JAVA_TOOL_OPTIONS, ...) cannot change how a server behaves.
func baseEnv(home string) []string {
	env := []string{"HOME=" + home}
	for _, k := range []string{"PATH", "LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// tailFile returns up to the last n lines of path (at most 64 KiB read),
// or a note saying why it could not.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
