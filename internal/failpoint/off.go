//go:build !failpoint

package failpoint

// Enabled reports whether failpoints are compiled in.
const Enabled = false

// Hit does nothing: failpoints are compiled in only with the build tag
// failpoint.
func Hit(string) {}
