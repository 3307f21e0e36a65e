package leasehold_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// TestExampleWorkerInProcess runs Example — the program the README shows
// under "Writing a processor", unchanged — against the local Kinesis and
// DynamoDB, configured as a user would: leasehold.yaml in the working
// folder, AWS_ENDPOINT_URL_* and credentials in the environment. Records
// put on the stream must come out of its file sink tagged by its own
// processor (and only those with a campaign), and SIGTERM must make it
// return.
func TestExampleWorkerInProcess(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc := testenv.Kinesis(e)
	ctx := testenv.Context(t, 2*time.Minute)
	stream, table := testenv.Name(t, "example"), testenv.Name(t, "example-leases")
	testenv.CreateStream(t, kc, stream, 2)

	dir := t.TempDir()
	out := filepath.Join(dir, "documents.ndjson")
	conf := fmt.Sprintf(`stream: {name: %s}
lease: {table: %s, duration: 4s, safety_margin: 1s, renew_interval: 1s, take_interval: 500ms}
worker: {metrics_addr: "127.0.0.1:0", idle_time: 200ms, max_read_rate: 5, checkpoint_interval: 500ms, shutdown_grace: 10s}
log: {format: json, level: warn}
pipeline:
  processors:
    - type: parse
    - type: tag_campaign
  sinks:
    - type: file
      path: %s
  dead_letter: {type: file, path: %s}
`, stream, table, out, filepath.Join(dir, "dead-letters.ndjson"))
	if err := os.WriteFile(filepath.Join(dir, "leasehold.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_ENDPOINT_URL_KINESIS": e.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB": e.DynamoDB} {
		t.Setenv(k, v)
	}

	done := make(chan struct{})
	go func() { defer close(done); Example() }()

	now := time.Now().UTC()
	lines := map[string]string{ // uri → query
		"/spring.mp4": "utm_campaign=spring",
		"/plain.mp4":  "-",
	}
	for uri, q := range lines {
		line := fmt.Sprintf("%s\t%s\tLAX1\t392\t192.0.2.10\tGET\td111111abcdef8.cloudfront.net\t%s\t200\t-\tcurl/8.4.0\t%s", now.Format("2006-01-02"), now.Format("15:04:05"), uri, q)
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &stream, PartitionKey: aws.String(uri), Data: []byte(line)}); err != nil {
			t.Fatal(err)
		}
	}

	got := map[string]string{} // uri → event_type
	for len(got) < len(lines) {
		select {
		case <-done:
			t.Fatal("Example returned before the records were processed")
		case <-ctx.Done():
			t.Fatalf("documents after 2 minutes: %v, want both of %v", got, lines)
		case <-time.After(200 * time.Millisecond):
		}
		got = readDocuments(t, out)
	}
	if got["/spring.mp4"] != "campaign_view" || got["/plain.mp4"] != "view" {
		t.Errorf("event types %v, want campaign_view for the campaign's request and view for the other", got)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Example did not return within 20s of SIGTERM")
	}
}

// readDocuments returns each document's event type by URI.
func readDocuments(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Document struct {
				URI       string `json:"uri"`
				EventType string `json:"event_type"`
			} `json:"document"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Document.URI != "" {
			got[l.Document.URI] = l.Document.EventType
		}
	}
	return got
}
