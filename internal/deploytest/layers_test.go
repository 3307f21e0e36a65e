package deploytest

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/leasehold/leasehold" // this module's path

// leaves are the helpers used deep in the library; they import no other
// package of the module but each other.
var leaves = []string{"internal/awsconf", "internal/awserr", "internal/backoff", "internal/config", "internal/failpoint", "internal/limits", "internal/logging"}

// TestImportsPointDown checks the layers of the house: the leaf helpers
// under internal/ import only each other; the library never imports the
// development programs and test tooling under internal/dev/, which only
// the command (its development build), the integration tests, test
// tooling packages (named ...test) and other internal/dev packages may use. Tests (_test.go files) are not counted:
// a package's tests may use the test tooling.
func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	isLeaf := map[string]bool{}
	for _, l := range leaves {
		isLeaf[module+"/"+l] = true
	}
	mayUseDev := func(pkg string) bool {
		rel := strings.TrimPrefix(pkg, module)
		testTooling := strings.HasSuffix(rel, "test") // explorer/explorertest, lease/leasetest, ...
		return rel == "/cmd/leasehold" || strings.HasPrefix(rel, "/internal/dev/") || rel == "/integration" || testTooling
	}
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			switch {
			case isLeaf[pkg] && !isLeaf[imp]:
				bad = append(bad, pkg+" (a leaf helper) imports "+imp)
			case strings.HasPrefix(imp, module+"/internal/dev/") && !mayUseDev(pkg):
				bad = append(bad, pkg+" (the library) imports the development package "+imp)
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}
