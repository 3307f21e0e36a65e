package deploytest

import (
	"go/ast"
	"go/parser"
	"go/token"
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
	root := repoRoot(t)
	fset := token.NewFileSet()
	checked := 0
	walkRepo(t, root, func(path, rel string, src []byte) {
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
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
					t.Errorf("%s:%d: os.%s changes the whole process's environment; pass it to the child (exec.Cmd.Env) or the SDK instead",
						rel, fset.Position(sel.Pos()).Line, sel.Sel.Name)
				}
			}
			return true
		})
	})
	if checked < 100 {
		t.Fatalf("checked only %d Go files under %s: is the walk broken?", checked, root)
	}
}
