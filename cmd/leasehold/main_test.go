package main

import (
	"errors"
	"testing"

	"github.com/leasehold/leasehold"
)

// TestExitCodes: mistakes in arguments, flags and configuration exit with
// 2, recognised by their type (usageError, *leasehold.ConfigError), not by
// the wording of cobra's messages.
func TestExitCodes(t *testing.T) {
	t.Setenv("LEASEHOLD_CONFIG", "")
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{}, exitOK},
		{"unknown command", []string{"bogus"}, exitUsage},
		{"extra argument", []string{"worker", "extra"}, exitUsage},
		{"unknown flag", []string{"--nope"}, exitUsage},
		{"bad flag value", []string{"leases", "--interval=x"}, exitUsage},
		{"missing argument", []string{"backfill"}, exitUsage},
		{"invalid config", []string{"worker", "--lease.duration=1ms"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(tc.args); got != tc.want {
				t.Errorf("run(%q) = %d, want %d", tc.args, got, tc.want)
			}
		})
	}
	if got := exitCode(&leasehold.ConfigError{Err: errors.New("x")}); got != exitUsage {
		t.Errorf("exitCode(ConfigError) = %d, want %d", got, exitUsage)
	}
	if got := exitCode(errors.New("unknown command in a message of a failure")); got != exitFailed {
		t.Errorf("exitCode(plain error) = %d, want %d: the wording must not decide", got, exitFailed)
	}
}
