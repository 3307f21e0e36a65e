package devstack

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestCompanionStoppedByDown starts a companion twice (the second start
// replaces the first) and checks that stopping the whole stack stops it.
func TestCompanionStoppedByDown(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), KinesisPort: 1, DynamoDBPort: 3, S3Port: 4, OpenSearchPort: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pid := func() int {
		r, err := readRecord(s.pidPath(companionPrefix + "sleeper"))
		if err != nil {
			t.Fatal(err)
		}
		return r.PID
	}
	if _, err := s.StartCompanion(ctx, "sleeper", []string{"/bin/sleep", "120"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	first := pid()
	if _, err := s.StartCompanion(ctx, "sleeper", []string{"/bin/sleep", "121"}, nil, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	second := pid()
	if ok, _ := alive(s.cfg.ProcRoot, first); ok || first == second {
		t.Fatalf("the first companion (pid %d) still runs after a restart", first)
	}
	if ok, _ := alive(s.cfg.ProcRoot, second); !ok {
		t.Fatal("the companion is not running")
	}
	if err := s.Down(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := alive(s.cfg.ProcRoot, second); ok {
		t.Fatal("dev down left the companion running")
	}
	if _, err := os.Stat(s.pidPath(companionPrefix + "sleeper")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left: %v", err)
	}
	// A companion that exits at once is reported with its log.
	if _, err := s.StartCompanion(ctx, "quitter", []string{"/bin/false"}, nil, func(context.Context) error { return errors.New("not yet") }); err == nil {
		t.Fatal("a companion that exited was reported ready")
	}
}
