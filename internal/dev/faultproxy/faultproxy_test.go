package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// backend is a minimal Kinesis answering PutRecords (all succeed) and
// ListShards, recording the partition keys it stored.
type backend struct {
	mu      sync.Mutex
	stored  []string
	targets []string
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets = append(b.targets, target)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case putRecordsTarget:
		var in struct {
			Records []struct{ PartitionKey string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var out struct {
			FailedRecordCount int
			Records           []map[string]string
		}
		for _, rec := range in.Records {
			b.stored = append(b.stored, rec.PartitionKey)
			out.Records = append(out.Records, map[string]string{"ShardId": "shardId-000000000000", "SequenceNumber": fmt.Sprint(len(b.stored))})
		}
		json.NewEncoder(w).Encode(out)
	default:
		fmt.Fprint(w, `{"Shards":[]}`)
	}
}

func (b *backend) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.stored...)
}

func client(t *testing.T, cfg Config) (*kinesis.Client, *Transport, *backend) {
	t.Helper()
	be := &backend{}
	srv := httptest.NewServer(be)
	t.Cleanup(srv.Close)
	tr, err := New(srv.Client().Transport, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.HTTPClient = &http.Client{Transport: tr}
		o.Retryer = aws.NopRetryer{}
	})
	return c, tr, be
}

func put(c *kinesis.Client, n int) (*kinesis.PutRecordsOutput, error) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
	for i := range n {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%03d", i)), Data: []byte("x")})
	}
	return c.PutRecords(context.Background(), in)
}

func TestEntryFailuresAreNeverWritten(t *testing.T) {
	tests := []struct {
		name string
		rate float64
	}{
		{"none", 0},
		{"some", 0.3},
		{"all", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tr, be := client(t, Config{Seed: 7, EntryFailRate: tt.rate})
			const n = 200
			out, err := put(c, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Records) != n {
				t.Fatalf("%d results for %d records", len(out.Records), n)
			}
			written := map[string]bool{}
			for _, k := range be.keys() {
				written[k] = true
			}
			failed := 0
			for i, r := range out.Records {
				key := fmt.Sprintf("k%03d", i)
				switch {
				case r.ErrorCode != nil:
					failed++
					if written[key] {
						t.Fatalf("entry %d reported %s but was written", i, *r.ErrorCode)
					}
				case !written[key] || r.SequenceNumber == nil:
					t.Fatalf("entry %d reported written but was not", i)
				}
			}
			if int(aws.ToInt32(out.FailedRecordCount)) != failed || len(be.keys()) != n-failed {
				t.Fatalf("FailedRecordCount %d, failed %d, stored %d", aws.ToInt32(out.FailedRecordCount), failed, len(be.keys()))
			}
			if s := tr.Stats(); s.EntriesFailed != failed || s.EntriesForwarded != n-failed {
				t.Fatalf("stats %+v", s)
			}
			if tt.rate == 0.3 && (failed < 30 || failed > 90) {
				t.Fatalf("%d of %d failed at rate 0.3", failed, n)
			}
		})
	}
}

func TestWholeCallFaults(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantCode  string
		wantReset bool
		written   int
	}{
		{"throttle", Config{ThrottleRate: 1}, "ProvisionedThroughputExceededException", false, 0},
		{"server error", Config{ServerErrorRate: 1}, "InternalFailure", false, 0},
		{"reset before", Config{ResetRate: 1}, "", true, 0},
		{"reset after", Config{ResetAfterRate: 1}, "", true, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, be := client(t, tt.cfg)
			_, err := put(c, 10)
			var apiErr smithy.APIError
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
			case tt.wantReset:
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("err = %v, want a connection reset", err)
				}
			}
			if got := len(be.keys()); got != tt.written {
				t.Fatalf("%d written, want %d", got, tt.written)
			}
		})
	}
}

func TestOtherOperationsPassThrough(t *testing.T) {
	c, tr, be := client(t, Config{ThrottleRate: 1})
	if _, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if tr.Stats().Calls != 0 || len(be.targets) != 1 {
		t.Fatalf("stats %+v, backend saw %v", tr.Stats(), be.targets)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"rates", Config{ThrottleRate: 0.1, ServerErrorRate: 0.1, ResetRate: 0.1, EntryFailRate: 0.5}, true},
		{"negative", Config{EntryFailRate: -0.1}, false},
		{"above one", Config{ThrottleRate: 1.5}, false},
		{"sum above one", Config{ThrottleRate: 0.6, ResetRate: 0.6}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
}
