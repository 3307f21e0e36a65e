package ingest_test

import (
	"testing"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
)

// TestFakeManifestConformance runs the manifest state machine against the
// fake; TestDynamoManifestConformance runs it against DynamoDB.
func TestFakeManifestConformance(t *testing.T) {
	ingesttest.RunManifestConformance(t, func(*testing.T) ingest.Manifest { return ingesttest.NewManifest() })
}
