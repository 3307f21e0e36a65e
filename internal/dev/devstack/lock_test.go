package devstack

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLockExcludes(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), KinesisPort: 4567, DynamoDBPort: 8000, S3Port: 9000, OpenSearchPort: 9200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: err = %v, want a wait that ends with the context", err)
	}
	unlock()
	unlock2, err := s.lock(t.Context())
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}
