package main

import (
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/logging"
)

// bindConfigFlags registers --config and one persistent flag per config key.
func bindConfigFlags(root *cobra.Command) {
	root.PersistentFlags().String("config", "", "YAML config file (env LEASEHOLD_CONFIG)")
	c := config.Default() // only the shape matters here
	config.BindFlags(root.PersistentFlags(), &c, nil)
}

// loadConfig resolves defaults, file, environment and flags, validates the
// result and builds the logger. Every error is a usageError: the user's to fix.
func loadConfig(cmd *cobra.Command) (config.Config, *zap.Logger, error) {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("LEASEHOLD_CONFIG")
	}
	c, err := config.Load(path, os.Environ())
	if err != nil {
		return c, nil, usageError{err}
	}
	if err := config.ApplyFlags(cmd.Flags(), &c); err != nil {
		return c, nil, usageError{err}
	}
	if err := leasehold.FinishConfig(&c); err != nil {
		return c, nil, err // a *leasehold.ConfigError: exit code 2
	}
	log, err := logging.New(c.Log.Level, c.Log.Format)
	if err != nil {
		return c, nil, usageError{err}
	}
	return c, log, nil
}
