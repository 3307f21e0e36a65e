package leasehold_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsExample: the README's "Writing a processor" program is
// Example, line for line, so the program users copy is the one the
// integration test runs.
func TestReadmeShowsExample(t *testing.T) {
	ex, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	body := between(t, string(ex), "func Example() {\n", "\n}\n")
	section := between(t, string(readme), "### Writing a processor", "\n#### ")
	program := between(t, section, "func main() {\n", "\n}\n")
	if program != body {
		t.Errorf("README's program differs from Example in example_test.go:\nREADME:\n%s\nExample:\n%s", program, body)
	}
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not found", start)
	}
	in, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("%q not found after %q", end, start)
	}
	return in
}
