package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
)

// s3Event is an S3 ObjectCreated notification as S3 sends it (keys
// URL-encoded, ETag without quotes).
func s3Event(refs ...ingest.ObjectRef) string {
	var recs []string
	for _, r := range refs {
		recs = append(recs, fmt.Sprintf(`{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2024-05-01T11:02:03.000Z",
"eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":%q,"arn":"arn:aws:s3:::%s"},
"object":{"key":%q,"size":%d,"eTag":%q,"sequencer":"0A1B2C3D4E5F678901"}}}`,
			r.Bucket, r.Bucket, strings.ReplaceAll(url.QueryEscape(r.Key), "%2F", "/"), r.Size, r.ETag))
	}
	return `{"Records":[` + strings.Join(recs, ",") + `]}`
}

func sqsEvent(bodies ...string) string {
	var recs []string
	for i, b := range bodies {
		recs = append(recs, fmt.Sprintf(`{"messageId":"m-%d","receiptHandle":"r","body":%q,"attributes":{},"messageAttributes":{},
"md5OfBody":"x","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:logs","awsRegion":"us-east-1"}`, i, b))
	}
	return `{"Records":[` + strings.Join(recs, ",") + `]}`
}

func TestLambdaHandler(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	h := ingest.NewHandler(f.in, nil)
	spaced := f.put("cf/E1 copy.2024-05-01-10.a.gz", 400, 30) // a key that S3 URL-encodes
	viaSQS := f.put("cf/E1.2024-05-01-11.b.gz", 300, 31)
	viaSNS := f.put("cf/E1.2024-05-01-12.c.gz", 200, 32)
	cut := f.put("cf/E1.2024-05-01-13.d.gz", 3000, 33)
	missing := ingest.ObjectRef{Bucket: "logs", Key: "cf/E1.2024-05-01-14.gone.gz", ETag: "abc"}
	var mu sync.Mutex
	cutOnce := true
	f.s3.CutAfter = func(_, key string) int {
		mu.Lock()
		defer mu.Unlock()
		if key == cut.Key && cutOnce {
			cutOnce = false
			return int(cut.Size / 3)
		}
		return -1
	}
	sns, _ := json.Marshal(map[string]string{"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:logs", "Message": s3Event(viaSNS)})

	t.Run("direct S3 event", func(t *testing.T) {
		out, err := h.Handle(ctxT(t), json.RawMessage(s3Event(spaced)))
		if err != nil || out != nil {
			t.Fatalf("Handle = %v, %v", out, err)
		}
		want(t, f.ids(t), 30, 0, 400, 1)
	})
	t.Run("SQS batch with partial failures", func(t *testing.T) {
		batch := sqsEvent(s3Event(viaSQS), string(sns), s3Event(cut), s3Event(missing),
			`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"logs"}`, "not json")
		out, err := h.Handle(ctxT(t), json.RawMessage(batch))
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := out.(events.SQSEventResponse)
		// Only the cut file is retried: the missing object is permanent,
		// the test event and the garbage are acknowledged.
		if !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-2" {
			t.Fatalf("response %#v, want one batch item failure, m-2", out)
		}
		ids := f.ids(t)
		want(t, ids, 31, 0, 300, 1)
		want(t, ids, 32, 0, 200, 1)

		// SQS redelivers m-2: the retry resumes and completes the file.
		out, err = h.Handle(ctxT(t), json.RawMessage(sqsEvent(s3Event(cut))))
		if err != nil || len(out.(events.SQSEventResponse).BatchItemFailures) != 0 {
			t.Fatalf("retry: %#v, %v", out, err)
		}
		want(t, f.ids(t), 33, 0, 3000, 1)
	})
	t.Run("direct event retried on a retryable failure", func(t *testing.T) {
		big := f.put("cf/E1.2024-05-01-15.e.gz", 5000, 34)
		h.Margin = time.Hour // the deadline is near: no time to start
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := h.Handle(ctx, json.RawMessage(s3Event(big)))
		if err == nil || !strings.Contains(err.Error(), big.Key+" (not started)") {
			t.Fatalf("error %v, want one naming the file not started", err)
		}
		h.Margin = 0
		if _, err := h.Handle(ctxT(t), json.RawMessage(s3Event(big))); err != nil {
			t.Fatal(err)
		}
		want(t, f.ids(t), 34, 0, 5000, 1)
		if e := m.Entries()[big.URL()]; e.State != ingest.StateDone || e.Records != 5000 {
			t.Fatalf("entry %+v, want done", e)
		}
	})
}
