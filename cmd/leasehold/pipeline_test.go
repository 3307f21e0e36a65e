package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs the binary's root command with args and stdin, as main does,
// and returns the exit code, stdout and stderr (with the error main would
// print last).
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(t.Context())
	if err != nil {
		errOut.WriteString("leasehold: " + err.Error() + "\n")
	}
	return exitCode(err), out.String(), errOut.String()
}

// TestPipelineRunExitCodes: 0 when every record became a document, 1 when
// a record was dead-lettered or an input failed, 2 for a bad config or
// flag (with nothing read).
func TestPipelineRunExitCodes(t *testing.T) {
	t.Setenv("LEASEHOLD_LOG_FORMAT", "json")
	fixture := filepath.Join("..", "..", "cloudfront", "testdata", "E1EXAMPLE.2019-12-04-21.mixed-33-fields.log")
	good := filepath.Join("..", "..", "cloudfront", "testdata", "variants", "standard-26-fields.log")
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badConfig, []byte("pipeline:\n  processors:\n    - type: parse\n    - type: nosuch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	event := `{"event_id":"e1","event_type":"view","occurred_at":"2024-05-01T10:00:00Z","asset_id":"a1","tenant_id":"acme"}` + "\n"
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		stdoutLines int
		stderr      string
	}{
		{"clean file", "", []string{"pipeline", "run", good}, 0, 2, "pipeline run: 1 input, 2 read, 2 documents, 0 filtered, 0 dead letters"},
		{"stdin", event, []string{"pipeline", "run"}, 0, 1, "1 read, 1 document,"},
		{"a dead letter", "", []string{"pipeline", "run", fixture}, 1, 11, "1 of 12 records were dead-lettered"},
		{"a missing input", "", []string{"pipeline", "run", filepath.Join(dir, "nope.gz"), good}, 1, 2, "input failed:"},
		{"bad config", "", []string{"--config", badConfig, "pipeline", "run", good}, 2, 0, `unknown processor type "nosuch"`},
		{"bad flag", "", []string{"pipeline", "run", "--format", "w3c", good}, 2, 0, `unknown format "w3c"`},
		{"unknown flag", "", []string{"pipeline", "run", "--nope"}, 2, 0, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			if n := strings.Count(out, "\n"); n != tc.stdoutLines {
				t.Fatalf("%d lines on stdout, want %d", n, tc.stdoutLines)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", tc.stderr, errOut)
			}
		})
	}
}
