package leasehold

import (
	"errors"
	"fmt"
	"os"

	"github.com/leasehold/leasehold/internal/config"
)

// Config is the whole configuration; see the package doc for why it is an
// alias. Start from DefaultConfig or LoadConfig; every key, its default
// and its environment variable are listed by `leasehold config reference`
// (docs/CONFIG.md).
type Config = config.Config

// The sections of Config a worker reads.
type (
	// LogConfig configures the zap logger Run builds when WithLogger is
	// not given.
	LogConfig = config.Log
	// StreamConfig names the Kinesis stream and where a new shard starts.
	StreamConfig = config.Stream
	// LeaseConfig configures the lease table and the lease timings.
	LeaseConfig = config.Lease
	// WorkerConfig configures reading, checkpoints, shutdown and metrics.
	WorkerConfig = config.Worker
	// Secret is a setting that formats as "[redacted]".
	Secret = config.Secret
)

// DefaultConfig returns the built-in defaults. Its Pipeline is empty: set
// one (LoadConfig from a file does) or worker.file_sink.
func DefaultConfig() Config { return config.Default() }

// ConfigError is a mistake in the configuration or in the options of New:
// the user's to fix, not a failure of the work. Its message names the
// key. The binary exits with status 2 for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// configErr wraps err in a *ConfigError unless it is nil or one already.
func configErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return err
	}
	return &ConfigError{Err: err}
}

// LoadConfig returns the configuration from, in rising precedence, the
// defaults, the YAML file at path (none when path is empty) and the
// process's LEASEHOLD_* environment variables, with `*_file` secrets read
// and every setting validated. It reads files only. Every error is a
// *ConfigError naming the key (and the line, for the file).
func LoadConfig(path string) (Config, error) {
	c, err := config.Load(path, os.Environ())
	if err != nil {
		return c, configErr(err)
	}
	return c, FinishConfig(&c)
}

// FinishConfig reads the `*_file` secrets of c and validates it: the last
// steps of LoadConfig, for a program that changed the loaded
// configuration (the binary applies its flags in between). Every error
// is a *ConfigError.
func FinishConfig(c *Config) error {
	if err := c.LoadSecretFiles(); err != nil {
		return configErr(err)
	}
	if err := c.Validate(); err != nil {
		return configErr(fmt.Errorf("invalid configuration:\n%w", err))
	}
	return nil
}
