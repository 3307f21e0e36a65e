package s3sink

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leasehold/leasehold/processors"
)

// Issue 11 follow-up: AccessDenied and NoSuchBucket stopped the shard
// (a permanent error), so the worker dropped the lease, took it again and
// stopped again, and nothing said "cannot write". They are an operator's
// to fix: the sink keeps the records and retries with backoff, reports
// the shard as unable to write (State, hence readiness and metrics), logs
// an Error once and an Info when writes succeed again, dead-letters
// nothing, and archives every record once the cause is fixed.
func TestCannotWriteIsRetriedAndReported(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"access denied", &apiErr{"AccessDenied", 403}},
		{"no such bucket", &apiErr{"NoSuchBucket", 404}},
		{"refused credentials", &apiErr{"InvalidAccessKeyId", 403}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3("archive")
			var refuse atomic.Bool
			refuse.Store(true)
			f.fail = func(string, string) error {
				if refuse.Load() {
					return tc.err
				}
				return nil
			}
			core, logs := observer.New(zapcore.InfoLevel)
			s, err := New(f, Options{Bucket: "archive", MaxAge: time.Hour}, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			s.retry.Min, s.retry.Max = time.Millisecond, 5*time.Millisecond
			dl := &fakeDL{}
			ss := open(t, s, dl)
			writeAll(t, ss, msgs(5, 1), 5)

			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			err = ss.Flush(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || processors.IsPermanent(err) {
				t.Fatalf("Flush while S3 refuses = %v; want it to keep retrying until ctx ends, not a permanent error", err)
			}
			st := s.State()
			if st.Stalled != 1 || st.CannotWrite != 1 || st.CannotWriteErrors < 2 || !strings.Contains(st.LastError, tc.err.(*apiErr).code) {
				t.Fatalf("state while S3 refuses: %+v; want one shard that cannot write, retried", st)
			}
			if n := logs.FilterMessageSnippet("s3 cannot write").FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
				t.Errorf("%d Error logs that S3 cannot write, want exactly 1 (then Warn per retry)", n)
			}
			if !ss.Durable().IsZero() {
				t.Fatalf("Durable %v while nothing is in S3", ss.Durable())
			}

			refuse.Store(false)
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatalf("Flush once S3 takes writes again: %v", err)
			}
			if st := s.State(); st.Stalled != 0 || st.CannotWrite != 0 {
				t.Fatalf("state after recovery: %+v", st)
			}
			if logs.FilterMessage("s3 requests succeed again").FilterLevelExact(zapcore.InfoLevel).Len() != 1 {
				t.Error("no Info log when writes succeeded again")
			}
			if len(dl.msgs) != 0 {
				t.Fatalf("%d records dead-lettered for a configuration problem", len(dl.msgs))
			}
			exactlyOnce(t, f, 5)
		})
	}
}
