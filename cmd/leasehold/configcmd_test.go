package main

import (
	"os"
	"strings"
	"testing"
)

// TestConfigReferenceIsCurrent keeps docs/CONFIG.md in step with the code:
// regenerate it with `go run ./cmd/leasehold config reference` when it fails.
func TestConfigReferenceIsCurrent(t *testing.T) {
	b, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), reference()) {
		t.Fatal("docs/CONFIG.md is stale: regenerate the table with `go run ./cmd/leasehold config reference` (see the file's header)")
	}
}
