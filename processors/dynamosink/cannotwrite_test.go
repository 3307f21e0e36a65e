package dynamosink

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leasehold/leasehold/processors"
)

// Issue 11 follow-up: a deleted table or a denied permission stopped the
// shard (a permanent error), again and again as the lease came back, and
// nothing said "cannot write". Now the sink keeps the items and retries
// with backoff, reports the shard as unable to write, logs an Error once
// and an Info on recovery, dead-letters nothing, and writes every item
// once the operator has fixed the table or the policy.
func TestCannotWriteIsRetriedAndReported(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"table deleted", &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}, "ResourceNotFoundException"},
		{"access denied", &apiErr{"AccessDeniedException", "not authorized to perform dynamodb:BatchWriteItem", 400}, "AccessDeniedException"},
		{"refused credentials", &apiErr{"UnrecognizedClientException", "invalid security token", 400}, "UnrecognizedClientException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := newFakeDB("backup")
			core, logs := observer.New(zapcore.InfoLevel)
			s, err := New(t.Context(), db, Options{Table: "backup"}, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			s.retry.Min, s.retry.Max = time.Millisecond, 5*time.Millisecond
			var refuse atomic.Bool
			refuse.Store(true)
			db.fail = func(int) error {
				if refuse.Load() {
					return tc.err
				}
				return nil
			}
			dl := &fakeDL{}
			ss := openSink(t, s, dl)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			err = ss.Write(ctx, msgs(3, 1))
			if !errors.Is(err, context.DeadlineExceeded) || processors.IsPermanent(err) {
				t.Fatalf("Write while DynamoDB refuses = %v; want it to keep retrying until ctx ends", err)
			}
			st := s.State()
			if st.Stalled != 1 || st.CannotWrite != 1 || st.CannotWriteErrors < 2 || !strings.Contains(st.LastError, tc.code) {
				t.Fatalf("state while DynamoDB refuses: %+v; want one shard that cannot write", st)
			}
			if n := logs.FilterMessageSnippet("dynamodb cannot write").FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
				t.Errorf("%d Error logs that DynamoDB cannot write, want exactly 1", n)
			}
			if !ss.Durable().IsZero() {
				t.Fatalf("Durable %v after a failed Write", ss.Durable())
			}

			refuse.Store(false)
			if err := ss.Write(t.Context(), msgs(3, 1)); err != nil {
				t.Fatalf("Write once DynamoDB takes writes again: %v", err)
			}
			if st := s.State(); st.Stalled != 0 || st.CannotWrite != 0 {
				t.Fatalf("state after recovery: %+v", st)
			}
			if logs.FilterMessage("dynamodb writes succeed again").Len() != 1 {
				t.Error("no Info log when writes succeeded again")
			}
			if len(dl.msgs) != 0 || db.count() != 3 {
				t.Fatalf("%d dead-lettered, %d items; want 0 and 3", len(dl.msgs), db.count())
			}
		})
	}
}
