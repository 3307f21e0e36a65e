//go:build !failpoint

package failpoint

import "testing"

// TestOffIgnoresEnvironment: without the failpoint build tag, a process
// whose environment names a failpoint runs past it (the test binary would
// exit with 137 otherwise).
func TestOffIgnoresEnvironment(t *testing.T) {
	t.Setenv("LEASEHOLD_FAILPOINT", AfterProcess)
	for range 3 {
		Hit(AfterProcess)
	}
	if Enabled {
		t.Fatal("Enabled without the failpoint tag")
	}
}
