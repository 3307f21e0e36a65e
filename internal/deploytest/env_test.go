package deploytest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoProcessWideEnvMutation: no code outside tests calls os.Setenv,
// os.Unsetenv or os.Clearenv. The environment is one per process, so a
// library or command that changes it changes it for every goroutine of
// an embedding program (and races with its reads); a child process is
// given its environment through exec.Cmd.Env instead, and the SDK its
// credentials through load options. Tests use t.Setenv.
func TestNoProcessWideEnvMutation(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	checked := 0
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "os" {
				switch sel.Sel.Name {
				case "Setenv", "Unsetenv", "Clearenv":
					rel, _ := filepath.Rel(root, path)
					found = append(found, fmt.Sprintf("%s:%d: os.%s", rel, fset.Position(sel.Pos()).Line, sel.Sel.Name))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d Go files under %s: is the walk broken?", checked, root)
	}
	for _, f := range found {
		t.Errorf("%s changes the whole process's environment; pass it to the child (exec.Cmd.Env) or the SDK instead", f)
	}
}
