// Command leasehold is the single binary of the leasehold system: it runs
// workers, producers and the local development stack. Each subcommand is
// one file in this folder; the logic lives in the packages.
//
// Exit codes: 0 success, 1 the work failed, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold"
)

// Exit codes scripts can rely on.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks an error as the user's to fix (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "leasehold:", err)
	return exitCode(err)
}

// exitCode maps a command's error to the exit code: 2 for bad usage or
// configuration, 1 for any other failure.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ce *leasehold.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailed
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "leasehold",
		Short: "Kinesis stream processing with fenced DynamoDB leases",
		Long: `leasehold consumes an Amazon Kinesis stream with a fleet of workers that share
its shards through a DynamoDB lease table, and runs every record through a
chain of processors into OpenSearch, S3 and DynamoDB.

Configuration comes from, in rising precedence: defaults, the YAML file given
by --config (or LEASEHOLD_CONFIG), LEASEHOLD_* environment variables, flags.
AWS credentials, region and endpoints come from the AWS SDK's default chain
(AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_KINESIS, ...).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	bindConfigFlags(root)
	root.AddCommand(
		newVersionCmd(),
		newConfigCmd(),
		newWorkerCmd(),
		newPipelineCmd(),
		newLeasesCmd(),
		newIngestCmd(),
		newBackfillCmd(),
		newCollectCmd(),
		newProduceCmd(),
		newDeadLetterCmd(),
		newExploreCmd(),
	)
	root.AddCommand(devCommands()...)
	typeArgErrors(root)
	return root
}

// typeArgErrors makes every positional-argument error of cmd and its
// subcommands a usageError (exit code 2): cobra's own errors are untyped.
// The root, which has subcommands, gets the check cobra would make for an
// unknown command, and shows its help when run alone.
func typeArgErrors(cmd *cobra.Command) {
	if !cmd.HasParent() {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], c.CommandPath(), c.CommandPath())
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		typeArgErrors(sub)
	}
}
