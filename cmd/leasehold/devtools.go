//go:build !production

package main

import "github.com/spf13/cobra"

// devCommands are the commands for development on one machine: the local
// stack (dev), the demo and the benchmarks. They carry the emulators'
// manager, an embedded S3 server and the workload generators, so the
// production binary leaves them out: build it with -tags production (the
// Dockerfile does).
func devCommands() []*cobra.Command {
	return []*cobra.Command{newDevCmd(), newBenchCmd(), newDemoCmd()}
}
