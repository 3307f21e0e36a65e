//go:build production

package main

import "github.com/spf13/cobra"

// devCommands: none in the production binary (see devtools.go).
func devCommands() []*cobra.Command { return nil }
