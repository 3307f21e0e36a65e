package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// TestSecretsNeverPrinted plants secrets in every way the configuration
// takes them — an OpenSearch password inline, from ${ENV} and from a
// password_file, the collector's token from the environment and from a
// token_file — and runs the binary down every output path at debug level:
// `config show`, a worker that starts, serves and stops on SIGTERM, a
// worker whose OpenSearch is unreachable, a configuration that does not
// validate, and the collector. No stdout or stderr contains a secret.
func TestSecretsNeverPrinted(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb", "opensearch")
	kc := testenv.Kinesis(e)
	stream := testenv.Name(t, "secrets")
	createStream(t, kc, stream, 1)
	leaseTable := testenv.Name(t, "secrets-leases")
	deleteTableAtEnd(t, leaseTable)
	for _, index := range []string{"lh-secrets-a", "lh-secrets-b", "lh-secrets-c"} {
		deleteIndicesAtEnd(t, index)
	}
	const (
		inline  = "pw-inline-3b8e"
		fromEnv = "pw-env-77c1"
		inFile  = "pw-file-a90d"
		token   = "tok-env-41f2"
		tokFile = "tok-file-c3d8"
	)
	secrets := []string{inline, fromEnv, inFile, token, tokFile}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile := write("os-password", inFile+"\n")
	tokenFile := write("token", tokFile+"\n")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	config := func(osURL string, extra string) string {
		return write(fmt.Sprintf("c-%d.yaml", time.Now().UnixNano()), fmt.Sprintf(`
%s
pipeline:
  processors:
    - type: parse
  sinks:
    - type: opensearch
      name: os-inline
      url: %[2]s
      index: lh-secrets-a-{yyyy.MM.dd}
      username: admin
      password: %[3]s
      max_retries: 1
    - type: opensearch
      name: os-env
      url: %[2]s
      index: lh-secrets-b-{yyyy.MM.dd}
      username: admin
      password: ${LH_TEST_SECRET_PW}
      max_retries: 1
    - type: opensearch
      name: os-file
      url: %[2]s
      index: lh-secrets-c-{yyyy.MM.dd}
      username: admin
      password_file: %[4]s
      max_retries: 1
  dead_letter:
    type: file
    path: %[5]s
`, extra, osURL, inline, pwFile, filepath.Join(dir, "dead.ndjson")))
	}
	env := append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL_KINESIS="+e.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+e.DynamoDB,
		"LEASEHOLD_STREAM_NAME="+stream, "LEASEHOLD_LEASE_TABLE="+leaseTable,
		"LEASEHOLD_LOG_LEVEL=debug", "LEASEHOLD_LOG_FORMAT=json", "LEASEHOLD_WORKER_METRICS_ADDR=127.0.0.1:0",
		"LH_TEST_SECRET_PW="+fromEnv, "LEASEHOLD_COLLECT_TOKEN="+token)
	var outputs []string
	check := func(what string, out ...string) {
		t.Helper()
		all := strings.Join(out, "\n")
		outputs = append(outputs, all)
		for _, s := range secrets {
			if strings.Contains(all, s) {
				t.Errorf("%s prints the secret %q:\n%s", what, s, ingestTail(all, 4000))
			}
		}
	}

	good := config(e.OpenSearch, "")
	out, errOut, code := runBinary(t, env, "--config", good, "config", "show")
	if code != 0 || strings.Count(out, "[redacted]") != 4 {
		t.Errorf("config show: exit %d, want 4 redacted values:\n%s%s", code, out, errOut)
	}
	check("config show", out, errOut)

	// A worker that starts, takes its shard, and stops on SIGTERM; one
	// whose cluster is unreachable (it retries, logging why, until
	// stopped).
	runWorker := func(conf string) string {
		t.Helper()
		cmd := exec.Command(binary, "--config", conf, "--worker.shutdown-grace", "3s", "worker")
		cmd.Env = env
		var wlog syncBuffer
		cmd.Stdout, cmd.Stderr = &wlog, &wlog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		waitLogAddr(t, &wlog, "metrics listening", exited)
		time.Sleep(3 * time.Second) // leases, reads, retries
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("worker did not stop within 30s of SIGTERM")
		}
		return wlog.String()
	}
	check("worker", runWorker(good))
	down := runWorker(config(deadURL, ""))
	if !strings.Contains(down, "connection refused") {
		t.Errorf("the worker with OpenSearch down does not say why:\n%s", ingestTail(down, 3000))
	}
	check("worker with OpenSearch down", down)

	// A configuration that does not validate: its error.
	out, errOut, code = runBinary(t, env, "--config", config(e.OpenSearch, "lease:\n  duration: 1ms\n"), "worker")
	if code != 2 {
		t.Errorf("invalid configuration: exit %d, want 2", code)
	}
	check("invalid configuration", out, errOut)

	// The collector, with the token from the environment, then a file.
	for _, extra := range [][]string{nil, {"LEASEHOLD_COLLECT_TOKEN=", "LEASEHOLD_COLLECT_TOKEN_FILE=" + tokenFile}} {
		c := startCollect(t, append(binaryEnv(e, stream, "LEASEHOLD_COLLECT_LISTEN=127.0.0.1:0", "LEASEHOLD_COLLECT_METRICS_ADDR=127.0.0.1:0",
			"LEASEHOLD_LOG_LEVEL=debug", "LEASEHOLD_COLLECT_TOKEN="+token), extra...))
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		<-c.exited
		check("collect", c.log.String())
	}
	if len(outputs) < 6 {
		t.Fatalf("only %d outputs checked", len(outputs))
	}
}
