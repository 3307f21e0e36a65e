package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const plantedSecret = "pl4nted-0s-pw-51c7"

// execRoot runs the root command with args and returns its output and
// error, as a user sees them.
func execRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestConfigShowRedactsEverySecret plants one secret in each way a secret
// reaches the configuration (inline in the pipeline, ${ENV} in the file,
// a password_file, the collector token from the environment and from a
// token_file) and checks that `config show`, and the error of a
// configuration that fails to validate, never print it.
func TestConfigShowRedactsEverySecret(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "os-password")
	if err := os.WriteFile(pwFile, []byte(plantedSecret+"-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(plantedSecret+"-tokfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "c.yaml")
	write := func(extra string) {
		t.Helper()
		body := fmt.Sprintf(`
pipeline:
  sinks:
    - type: opensearch
      url: http://127.0.0.1:9200
      username: admin
      password: %s-inline
    - type: opensearch
      name: os2
      url: http://127.0.0.1:9200
      username: admin
      password: ${LH_TEST_OS_PASSWORD}
    - type: opensearch
      name: os3
      url: http://127.0.0.1:9200
      username: admin
      password_file: %s
  dead_letter:
    type: file
    path: %s
%s`, plantedSecret, pwFile, filepath.Join(dir, "dl.ndjson"), extra)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LH_TEST_OS_PASSWORD", plantedSecret+"-env")

	write("")
	t.Setenv("LEASEHOLD_COLLECT_TOKEN", plantedSecret+"-token")
	out, err := execRoot(t, "--config", conf, "config", "show")
	if err != nil {
		t.Fatalf("config show: %v\n%s", err, out)
	}
	if strings.Contains(out, plantedSecret) {
		t.Errorf("config show prints a secret:\n%s", out)
	}
	if n := strings.Count(out, "[redacted]"); n != 4 {
		t.Errorf("config show has %d redacted values, want 4 (three passwords, the token):\n%s", n, out)
	}

	// The token from a file instead.
	os.Unsetenv("LEASEHOLD_COLLECT_TOKEN")
	out, err = execRoot(t, "--config", conf, "--collect.token-file", tokFile, "config", "show")
	if err != nil || strings.Contains(out, plantedSecret) || !strings.Contains(out, "token: '[redacted]'") {
		t.Errorf("config show with collect.token_file (%v):\n%s", err, out)
	}

	// A configuration that does not validate: the error lists the
	// problems, never a secret.
	write("lease:\n  duration: 1ms\n")
	out, err = execRoot(t, "--config", conf, "config", "show")
	if err == nil {
		t.Fatal("an invalid configuration was shown")
	}
	if msg := out + err.Error(); strings.Contains(msg, plantedSecret) || !strings.Contains(msg, "lease.duration") {
		t.Errorf("error output: %s", msg)
	}

	// An unset variable names the variable, not anything else.
	t.Setenv("LH_TEST_OS_PASSWORD", "")
	os.Unsetenv("LH_TEST_OS_PASSWORD")
	write("")
	_, err = execRoot(t, "--config", conf, "config", "show")
	if err == nil || !strings.Contains(err.Error(), "LH_TEST_OS_PASSWORD is not set") || strings.Contains(err.Error(), plantedSecret) {
		t.Errorf("unset variable: %v", err)
	}
}
