package deploytest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNothingReachesAboveTheRepository fails when a Go file, shell script,
// Makefile, Dockerfile, YAML or JavaScript file of the repository refers to
// a path outside it: a relative path that climbs above the repository root,
// or the workspace's sibling folder of shared test data that a fresh clone
// does not have. The project must build, test, demo and benchmark from a
// clone with nothing beside it.
func TestNothingReachesAboveTheRepository(t *testing.T) {
	root := repoRoot(t)
	self, err := filepath.Abs("paths_test.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	walkRepo(t, root, func(path, rel string, b []byte) {
		if path == self || !checkedFile(path, b) {
			return // paths_test.go spells out what it looks for
		}
		checked++
		for _, p := range outsideRefs(root, filepath.Dir(path), strings.HasSuffix(path, ".go"), b) {
			t.Errorf("%s:%d: %q refers to a path outside the repository", rel, p.line, p.text)
		}
	})
	if checked < 50 {
		t.Fatalf("checked only %d files under %s: is the walk broken?", checked, root)
	}
}

// repoRoot returns the repository root, two folders up, which holds
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// walkRepo calls visit with every file below root (but in the folders
// skipDir names): its path, its path relative to root and its content.
func walkRepo(t *testing.T, root string, visit func(path, rel string, content []byte)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		visit(path, rel, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// skipDir names folders that hold no project source: version control,
// the local stack's downloads, build output, installed packages.
func skipDir(name string) bool {
	switch name {
	case ".git", ".leasehold", "bin", "dist", "node_modules":
		return true
	}
	return false
}

// checkedFile says whether path is a kind of file the guard reads: Go,
// shell (by extension or shebang), Makefile, Dockerfile, YAML, JavaScript.
func checkedFile(path string, content []byte) bool {
	base := filepath.Base(path)
	switch filepath.Ext(base) {
	case ".go", ".sh", ".bash", ".mk", ".yaml", ".yml", ".js":
		return true
	}
	switch base {
	case "Makefile", "Dockerfile":
		return true
	}
	return bytes.HasPrefix(content, []byte("#!"))
}

// ref is one offending reference.
type ref struct {
	line int
	text string
}

var (
	// pathToken is a run of characters that can make up a path.
	pathToken = regexp.MustCompile(`[A-Za-z0-9_.\-/]+`)
	// sharedRef names the workspace's sibling folder of shared files,
	// however it is spelt (a path, or filepath.Join arguments).
	sharedRef = regexp.MustCompile(`\bshared/(testdata|DESIGN\.md|STYLE\.md|hooks)\b|"shared",\s*"testdata"`)
)

// outsideRefs returns the references in content (a file in dir) to paths
// outside root. A relative path is resolved against the file's folder; in
// files that run from the repository root (scripts, Makefiles, YAML
// configs) it must also stay inside when resolved against the root. Go
// code is resolved against its own folder only: tests run there, and
// commands take their paths from flags. Absolute paths, URLs and
// "$(dirname "$0")/.." are not relative paths and are left alone.
func outsideRefs(root, dir string, goFile bool, content []byte) []ref {
	var out []ref
	for i, line := range strings.Split(string(content), "\n") {
		if sharedRef.MatchString(line) {
			out = append(out, ref{i + 1, strings.TrimSpace(sharedRef.FindString(line))})
			continue
		}
		for _, loc := range pathToken.FindAllStringIndex(line, -1) {
			tok := line[loc[0]:loc[1]]
			if !climbs(tok) || strings.HasPrefix(tok, "/") || isURL(line, loc[0]) {
				continue
			}
			bases := []string{dir}
			if !goFile {
				bases = append(bases, root)
			}
			for _, base := range bases {
				if !inside(root, filepath.Join(base, tok)) {
					out = append(out, ref{i + 1, tok})
					break
				}
			}
		}
	}
	return out
}

// climbs says whether tok has a ".." path element.
func climbs(tok string) bool {
	for _, el := range strings.Split(tok, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// isURL says whether the token at start is part of a URL (scheme:// before
// it on the line, with no space in between).
func isURL(line string, start int) bool {
	before := line[:start]
	if i := strings.LastIndexAny(before, " \t\"'`("); i >= 0 {
		before = before[i+1:]
	}
	return strings.Contains(before, "://")
}

// inside says whether path is root or below it.
func inside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// TestOutsideRefs checks the guard's own judgement on the cases it must
// tell apart.
func TestOutsideRefs(t *testing.T) {
	root := "/repo"
	tests := []struct {
		name    string
		dir     string
		goFile  bool
		content string
		bad     bool
	}{
		{"docs from a command folder", "/repo/cmd/leasehold", true, `os.ReadFile("../../docs/CONFIG.md")`, false},
		{"fixture from a sibling package", "/repo/processors/transform", true, `"../../cloudfront/testdata/x.log"`, false},
		{"one level too many", "/repo/cmd/leasehold", true, `os.ReadFile("../../../docs/CONFIG.md")`, true},
		{"sibling of the repository from a config", "/repo/examples", false, `city_db: ../shared/testdata/geoip/City.mmdb`, true},
		{"sibling of the repository, resolved from the root", "/repo/examples", false, `city_db: ../geo/City.mmdb`, true},
		{"climbs from the root in a script", "/repo/scripts", false, `cat ../other/file`, true},
		{"script's own folder to root", "/repo/scripts", false, `cd "$(dirname "$0")/.."`, false},
		{"walk up to a shared folder", "/repo/cloudfront", true, `p := filepath.Join(d, "shared", "testdata", "x")`, true},
		{"shared folder by path", "/repo/cmd/leasehold", true, `// default: shared/testdata/geoip beside the repository`, true},
		{"a URL", "/repo/docs", false, `see https://example.com/a/../b`, false},
		{"absolute path", "/repo/internal/x", true, `"/usr/lib/../bin"`, false},
		{"the word shared", "/repo/processors", true, `// the message is shared with other sinks`, false},
		{"dot-dot inside a name", "/repo/x", true, `"a..b/c"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := outsideRefs(root, tc.dir, tc.goFile, []byte(tc.content))
			if bad := len(got) > 0; bad != tc.bad {
				t.Fatalf("outsideRefs(%q) = %v, want bad=%v", tc.content, got, tc.bad)
			}
		})
	}
}
