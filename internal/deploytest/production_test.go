package deploytest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProductionBinaryLeavesOutDevTools: the Dockerfile builds with
// -tags production, and that binary carries none of the development
// programs under internal/dev (local stack, demo, benchmarks, workload,
// fault proxies, test environment).
func TestProductionBinaryLeavesOutDevTools(t *testing.T) {
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docker), "go build -tags production") {
		t.Fatal("the Dockerfile does not build with -tags production")
	}
	out, err := exec.Command("go", "list", "-deps", "-tags", "production", "../../cmd/leasehold").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/leasehold/leasehold/internal/dev/") {
			t.Errorf("the production binary imports %s", pkg)
		}
	}
	// And the development build has them, so the check above means something.
	out, err = exec.Command("go", "list", "-deps", "../../cmd/leasehold").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/leasehold/leasehold/internal/dev/devstack\n") {
		t.Error("the development build does not import internal/dev/devstack; this test checks nothing")
	}
}
