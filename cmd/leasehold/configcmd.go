package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check and print the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Validate the effective configuration (defaults, file, env, flags) and print it as YAML, secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(c.Redacted())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}, &cobra.Command{
		Use:   "reference",
		Short: "Print every setting with its YAML key, environment variable, flag and default (Markdown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), reference())
			return nil
		},
	})
	return cmd
}

// reference renders the config reference table from the code's defaults.
func reference() string {
	c := config.Default()
	var b strings.Builder
	b.WriteString("| key | environment variable | flag | type | default | meaning |\n|---|---|---|---|---|---|\n")
	for _, f := range config.Fields(&c) {
		fmt.Fprintf(&b, "| `%s` | `%s` | `--%s` | %s | `%s` | %s |\n", f.Key, f.Env, f.Flag, f.Kind(), f.Value(), f.Doc)
	}
	return b.String()
}
