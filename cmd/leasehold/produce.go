package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/producer"
)

func newProduceCmd() *cobra.Command {
	var file string
	var aggregate bool
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send NDJSON app events from a file or stdin to the stream",
		Long: `Send app events, one JSON object per line, from --file (default stdin) to
stream.name through the batching producer. Every line is validated against the
app-event schema first; an invalid line is reported on stderr with its line
number and skipped, and the others are still sent. Events are keyed by
collect.partition_key (asset_id or tenant_id).

Prints a summary on stdout: events sent, Kinesis records, rate, invalid lines
and events not sent. Ctrl-C stops reading and still sends what was read.

Exit codes: 0 when every line was sent, 1 when any line was invalid or any
event could not be sent, 2 for bad usage or configuration.`,
		Example: `  leasehold produce --file events.ndjson
  generate-events | leasehold produce --aggregate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			var in io.Reader = cmd.InOrStdin()
			if file != "" && file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return usageError{fmt.Errorf("--file: %w", err)}
				}
				defer f.Close()
				in = f
			}
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			kc := awsconf.Kinesis(awsCfg)
			if err := checkStream(cmd.Context(), kc, c.Stream.Name); err != nil {
				return usageError{err}
			}
			rep, err := collector.Send(cmd.Context(), kc, c.Stream.Name, in, collector.SendConfig{
				PartitionBy: collector.PartitionBy(c.Collect.PartitionKey),
				Problems:    cmd.ErrOrStderr(),
			}, producer.WithAggregation(aggregate), producer.WithLogger(log))
			fmt.Fprintln(cmd.OutOrStdout(), rep)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "NDJSON file to send (default stdin; - also means stdin)")
	cmd.Flags().BoolVar(&aggregate, "aggregate", false, "pack events into KPL aggregated Kinesis records")
	return cmd
}
