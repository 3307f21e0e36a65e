package main

import (
	"context"
	"strings"
	"testing"
)

// TestSetupRejectsBadConfig checks that a configuration mistake fails the
// cold start with a message naming the key, before any AWS call.
func TestSetupRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "bad value", env: map[string]string{"LEASEHOLD_INGEST_CHECKPOINT_LINES": "10"}, want: "ingest.checkpoint_lines"},
		{name: "unknown variable", env: map[string]string{"LEASEHOLD_INGEST_CONCURENCY": "2"}, want: "LEASEHOLD_INGEST_CONCURRENCY"},
		{name: "bad table name", env: map[string]string{"LEASEHOLD_INGEST_MANIFEST_TABLE": "a b"}, want: "ingest.manifest_table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", "us-east-1")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := setup(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("setup: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
