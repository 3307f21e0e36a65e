package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/processors/s3sink"
	"github.com/leasehold/leasehold/processors/transform"
	"github.com/leasehold/leasehold/worker"
)

// runBinary runs the leasehold binary and returns stdout, stderr and the
// exit code.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestDeadLetterRedrive makes real dead letters and redrives them with
// the binary against the local S3, OpenSearch and Kinesis. A pipeline
// (parse → OpenSearch + S3 archive, dead letters to S3) meets an index
// whose mapping rejects every document (asset_id mapped as a number) and
// three lines that are not events. `deadletter list` shows the 23 with
// their stages and reasons. Once the index is fixed, `deadletter replay
// --stage opensearch` indexes the 20 documents under their event ids,
// writes nothing to the archive (which has them), and exits 0; replaying
// again adds nothing. The parse dead letters fail again (exit 1) and are
// still dead letters; `--to stream` puts their raw lines into the
// stream, and refuses the sink's dead letters (exit 1). Bad usage exits
// 2. No output shows the OpenSearch password.
func TestDeadLetterRedrive(t *testing.T) {
	e := testenv.Require(t, "s3", "opensearch", "kinesis")
	sc, kc := testenv.S3(e), testenv.Kinesis(e)
	bucket := sinkBucket(t, sc)
	stream := testenv.Name(t, "redrive")
	createStream(t, kc, stream, 1)
	prefix := testenv.Name(t, "lh-redrive")
	const password = "os-pw-5e1c7-never-printed"
	dir := t.TempDir()
	conf := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
pipeline:
  processors:
    - type: parse
  sinks:
    - type: opensearch
      url: %s
      index: %s-{yyyy.MM.dd}
      replicas: 0
      shards: 1
      max_retries: 3
      username: admin
      password: ${LH_REDRIVE_OS_PASSWORD}
    - type: s3
      bucket: %s
  dead_letter:
    type: s3
    bucket: %s
`, e.OpenSearch, prefix, bucket, bucket)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := binaryEnv(e, stream, "AWS_ENDPOINT_URL_S3="+e.S3, "LEASEHOLD_CONFIG="+conf, "LH_REDRIVE_OS_PASSWORD="+password,
		"LEASEHOLD_LOG_LEVEL=debug")
	t.Cleanup(func() {
		for _, u := range []string{e.OpenSearch + "/" + prefix + "-*", e.OpenSearch + "/_index_template/" + prefix} {
			req, _ := http.NewRequest(http.MethodDelete, u, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})

	// Today's index, made before the sink's template, with a mapping
	// every event breaks.
	now := time.Now().UTC().Truncate(time.Second)
	index := prefix + "-" + now.Format("2006.01.02")
	osHTTP(t, http.MethodPut, e.OpenSearch+"/"+index, `{"settings":{"number_of_replicas":0},"mappings":{"properties":{"asset_id":{"type":"long"}}}}`, nil)

	// The pipeline, as the worker builds it, from the same file.
	t.Setenv("LH_REDRIVE_OS_PASSWORD", password)
	var doc yaml.Node
	raw, _ := os.ReadFile(conf)
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(string(raw), "${LH_REDRIVE_OS_PASSWORD}", password)), &doc); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(doc.Content[0].Content[1])
	if err != nil {
		t.Fatal(err)
	}
	reg := processors.NewRegistry()
	transform.Register(reg)
	opensearch.Register(reg)
	s3sink.Register(reg)
	deadletter.Register(reg)
	ctx := testenv.Context(t, 5*time.Minute)
	p, err := processors.Build(ctx, reg, spec, processors.Deps{S3: sc}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var recs []worker.Record
	for i := range 23 {
		data := fmt.Sprintf(`{"event_id":"rd-%d","event_type":"view","occurred_at":%q,"asset_id":"asset-%d","tenant_id":"acme"}`, i, now.Format(time.RFC3339), i%4)
		if i >= 20 {
			data = fmt.Sprintf("not an event %d", i)
		}
		recs = append(recs, worker.Record{StreamName: stream, ShardID: "shardId-000000000000", SequenceNumber: sinkSeq(i), PartitionKey: fmt.Sprintf("asset-%d", i%4), Data: []byte(data), ArrivalTime: now})
	}
	sp, err := p.Factory()(ctx, worker.Shard{StreamName: stream, ShardID: "shardId-000000000000", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Process(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sp.Close(worker.CloseShutdown)
	p.Close(ctx)
	archived := func() int {
		counts, _ := sinkArchive(t, sc, bucket)
		n := 0
		for _, c := range counts {
			n += c
		}
		return n
	}
	if docs, _ := osCount(t, e.OpenSearch, prefix+"-*"); docs != 0 || archived() != 20 {
		t.Fatalf("before the redrive: %d documents, %d archived; want 0 and 20", docs, archived())
	}

	var outputs []string
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, errOut, code := runBinary(t, env, args...)
		outputs = append(outputs, out, errOut)
		if code != wantCode {
			t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, wantCode, out, ingestTail(errOut, 3000))
		}
		return out
	}

	out := run(0, "deadletter", "list")
	for _, want := range []string{"23 dead letters in s3://" + bucket + "/dead-letter/", "opensearch", "mapper_parsing_exception", "parse", "rd-7"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if out := run(0, "deadletter", "list", "--stage", "parse", "--json"); strings.Count(out, "\n") != 3 || !strings.Contains(out, `"stage":"parse"`) {
		t.Errorf("list --stage parse --json:\n%s", out)
	}

	// Fix the cause: the index goes, the sink's template makes the next.
	osHTTP(t, http.MethodDelete, e.OpenSearch+"/"+index, "", nil)
	out = run(0, "deadletter", "replay", "--stage", "opensearch")
	if !strings.Contains(out, "replayed: 20, failed again: 0") {
		t.Errorf("replay summary:\n%s", out)
	}
	docs, distinct := osCount(t, e.OpenSearch, prefix+"-*")
	if docs != 20 || distinct != 20 || archived() != 20 {
		t.Fatalf("after the replay: %d documents (%d distinct), %d archived; want 20, 20, 20", docs, distinct, archived())
	}
	var got struct {
		Found bool `json:"found"`
	}
	osHTTP(t, http.MethodGet, e.OpenSearch+"/"+index+"/_doc/rd-7", "", &got)
	if !got.Found {
		t.Error("document rd-7 is not under its event id")
	}

	out = run(0, "deadletter", "replay", "--stage", "opensearch")
	if !strings.Contains(out, "0 selected") || !strings.Contains(out, "20 skipped as replayed before") {
		t.Errorf("second replay:\n%s", out)
	}
	if docs, _ := osCount(t, e.OpenSearch, prefix+"-*"); docs != 20 || archived() != 20 {
		t.Fatalf("the second replay added something: %d documents, %d archived", docs, archived())
	}
	if out := run(0, "deadletter", "list"); !strings.Contains(out, "3 dead letters") {
		t.Errorf("list after the replay shows what was replayed:\n%s", out)
	}

	// The lines that are no events fail again and are dead letters again.
	out = run(1, "deadletter", "replay", "--stage", "parse")
	if !strings.Contains(out, "failed again: 3") {
		t.Errorf("replay of parse dead letters:\n%s", out)
	}
	// They stay dead letters, not replayed: the S3 destination keeps one
	// object per set of failures and day, so the same failure is not
	// stored twice.
	if out := run(0, "deadletter", "list", "--stage", "parse"); !strings.Contains(out, "3 dead letters") {
		t.Errorf("after failing again:\n%s", out)
	}
	// Into the stream: the raw lines, once each; a sink's dead letters are
	// refused.
	out = run(0, "deadletter", "replay", "--to", "stream", "--stage", "parse")
	if !strings.Contains(out, "replayed: 3") {
		t.Errorf("replay --to stream:\n%s", out)
	}
	var lines []string
	for _, u := range readStream(t, kc, stream) {
		lines = append(lines, string(u.Data))
	}
	if fmt.Sprint(lines) != "[not an event 20 not an event 21 not an event 22]" {
		t.Errorf("stream holds %q", lines)
	}
	out = run(1, "deadletter", "replay", "--to", "stream", "--stage", "opensearch", "--all")
	if !strings.Contains(out, "not replayed by this target: 20") || !strings.Contains(out, "replay it --to pipeline") {
		t.Errorf("sink dead letters into the stream:\n%s", out)
	}

	run(2, "deadletter", "replay", "--to", "nowhere")
	run(2, "deadletter", "list", "--since", "yesterday")
	run(2, "deadletter", "list", "--from", "s3://")

	for _, o := range outputs {
		if strings.Contains(o, password) {
			t.Fatalf("an output shows the OpenSearch password:\n%s", o)
		}
	}
}
