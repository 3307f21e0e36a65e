package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"
)

// Handler is the AWS Lambda function: it ingests the objects named by S3
// "ObjectCreated" event notifications, delivered directly (asynchronous
// invocation) or as SQS messages whose body is the S3 event (also through
// SNS: a notification whose Message is the S3 event). Its methods are safe
// for concurrent use (Lambda calls them one event at a time); set Margin
// before the first call.
//
// Files that failed retryably are retried by Lambda: a direct event makes
// Handle return an error (Lambda retries asynchronous invocations twice);
// an SQS batch reports the messages to retry in batchItemFailures (the
// event source mapping needs ReportBatchItemFailures). Permanent failures
// (a corrupt file, a missing object) are logged at Error and not retried.
// With a manifest, a retry skips files already done and resumes a partial
// file at its offset; a file too large for one invocation is read until
// Margin before the deadline and continued by the retry.
type Handler struct {
	in  *Ingester
	log *zap.Logger
	// Margin is how long before the invocation's deadline reading stops so
	// that records in flight are confirmed and the offset is recorded.
	// Default: a quarter of the time left at the start, between 2s and 30s.
	Margin time.Duration
}

// NewHandler returns a handler ingesting with in.
func NewHandler(in *Ingester, log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{in: in, log: log}
}

// Handle is the Lambda entry point (pass it to lambda.Start). It detects
// the event type: for SQS it returns events.SQSEventResponse and a nil
// error; for a direct S3 event, nil and an error when a file should be
// retried. An event it cannot read is an error.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("ingest: lambda event: %w", err)
	}
	if len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs" {
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("ingest: lambda SQS event: %w", err)
		}
		return h.HandleSQS(ctx, ev)
	}
	var ev events.S3Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("ingest: lambda S3 event: %w", err)
	}
	return nil, h.HandleS3(ctx, ev)
}

// HandleS3 ingests the objects of a direct S3 event, one after another.
// It returns an error naming the files to retry when any failed
// retryably; nil otherwise.
func (h *Handler) HandleS3(ctx context.Context, ev events.S3Event) error {
	stopAt := h.stopReadingAt(ctx)
	var retry []string
	for _, ref := range objectsOf(ev) {
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			retry = append(retry, ref.URL()+" (not started)")
			continue
		}
		if err := h.ingest(ctx, ref, stopAt); err != nil {
			retry = append(retry, err.Error())
		}
	}
	if len(retry) > 0 {
		return fmt.Errorf("ingest: %d files to retry: %s", len(retry), strings.Join(retry, "; "))
	}
	return nil
}

// HandleSQS ingests the objects of each message's S3 event and reports the
// messages with a retryable failure, so SQS delivers only those again.
// Messages that are not S3 events (or the s3:TestEvent) are acknowledged
// and logged. It never returns an error: every outcome is per message.
func (h *Handler) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	stopAt := h.stopReadingAt(ctx)
	var resp events.SQSEventResponse
	for _, msg := range ev.Records {
		s3ev, err := s3EventOf(msg.Body)
		if err != nil {
			h.log.Error("SQS message is not an S3 event; dropped", zap.String("message_id", msg.MessageId), zap.Error(err))
			continue
		}
		failed := false
		for _, ref := range objectsOf(s3ev) {
			if !stopAt.IsZero() && time.Now().After(stopAt) {
				failed = true
				break
			}
			if err := h.ingest(ctx, ref, stopAt); err != nil {
				failed = true
			}
		}
		if failed {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

// ingest ingests one object and returns an error only when it should be
// retried; a permanent failure is logged here.
func (h *Handler) ingest(ctx context.Context, ref ObjectRef, stopAt time.Time) error {
	// Another invocation may hold the file (S3 delivers events at least
	// once): wait for it within the time left, then let the retry decide.
	res, err := h.in.Ingest(ctx, ref, FileOptions{StopReadingAt: stopAt, WaitClaimed: true})
	switch {
	case err == nil:
		h.log.Info("file ingested", zap.String("file", ref.URL()), zap.Bool("skipped", res.Skipped),
			zap.Int64("records", res.Records), zap.Int("start_line", res.StartLine), zap.Int("end_line", res.EndLine),
			zap.Int64("bad_lines", res.BadLines), zap.Duration("took", res.Duration))
		return nil
	case Retryable(err):
		return err
	default:
		h.log.Error("file failed permanently; not retried", zap.String("file", ref.URL()), zap.Int("confirmed_line", res.EndLine), zap.Error(err))
		return nil
	}
}

// stopReadingAt returns when reading must stop: Margin before ctx's
// deadline; zero without a deadline.
func (h *Handler) stopReadingAt(ctx context.Context) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	margin := h.Margin
	if margin <= 0 {
		margin = min(max(time.Until(dl)/4, 2*time.Second), 30*time.Second)
	}
	return dl.Add(-margin)
}

// objectsOf returns the objects created in ev, decoded keys.
func objectsOf(ev events.S3Event) []ObjectRef {
	var refs []ObjectRef
	for _, r := range ev.Records {
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue
		}
		key := r.S3.Object.URLDecodedKey
		if key == "" {
			key = r.S3.Object.Key
		}
		refs = append(refs, ObjectRef{Bucket: r.S3.Bucket.Name, Key: key, ETag: trimETag(r.S3.Object.ETag), Size: r.S3.Object.Size})
	}
	return refs
}

// errNotS3Event is returned by s3EventOf for a body that is no S3 event.
var errNotS3Event = errors.New("ingest: not an S3 event notification")

// s3EventOf decodes an SQS message body: an S3 event, an SNS notification
// carrying one, or the s3:TestEvent S3 sends when notifications are set
// up (an empty event).
func s3EventOf(body string) (events.S3Event, error) {
	var probe struct {
		Records []json.RawMessage `json:"Records"`
		Type    string            `json:"Type"`
		Message string            `json:"Message"`
		Event   string            `json:"Event"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return events.S3Event{}, fmt.Errorf("%w: %w", errNotS3Event, err)
	}
	switch {
	case probe.Type == "Notification" && probe.Message != "":
		return s3EventOf(probe.Message)
	case probe.Event == "s3:TestEvent":
		return events.S3Event{}, nil
	case len(probe.Records) == 0:
		return events.S3Event{}, errNotS3Event
	}
	var ev events.S3Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return events.S3Event{}, fmt.Errorf("%w: %w", errNotS3Event, err)
	}
	return ev, nil
}
