package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/localrun"
)

func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run the processor pipeline locally",
	}
	cmd.AddCommand(newPipelineRunCmd())
	return cmd
}

func newPipelineRunCmd() *cobra.Command {
	var (
		format, deadLetters string
		realtimeFields      []string
		useSinks            bool
	)
	cmd := &cobra.Command{
		Use:   "run [FILE ...]",
		Short: "Run files or stdin through the pipeline, with no stream and no lease table",
		Long: `Read CloudFront standard logs (plain or gzip, with or without a #Fields
header), CloudFront real-time logs or NDJSON app events from the files given
(default, or "-": stdin), cut them into records as production does, run the
records through the processors of the config's pipeline section (default
chain: parse, useragent, anonymize_ip), and write each document as one NDJSON
line to stdout — or to the config's sinks with --sinks.

Dead letters go to stderr with their reasons (or, as NDJSON with the raw
record, to --dead-letter FILE), and a summary line ends the run on stderr:
records read, documents, filtered, dead letters. Documents carry
source_record.shard_id = the input's name and sequence_number = its line.

Exit codes: 0 when every input was read and nothing was dead-lettered, 1 when
an input could not be read to its end or any record was dead-lettered, 2 for
bad usage or configuration.`,
		Example: `  leasehold pipeline run E1EXAMPLE.2024-05-01-10.abcd1234.gz
  zcat logs/*.gz | leasehold pipeline run --config pipeline.yaml | jq .ua
  leasehold pipeline run --realtime-fields timestamp,c-ip,sc-status,cs-host,cs-uri-stem records.tsv
  leasehold pipeline run --format app events.ndjson --dead-letter bad.ndjson`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			deps := processors.Deps{Logger: log}
			if useSinks {
				awsCfg, err := leasehold.LoadAWSConfig(cmd.Context())
				if err != nil {
					return err
				}
				deps = leasehold.AWSDeps(awsCfg, log)
			}
			opts := localrun.Options{
				Inputs: args, Stdin: cmd.InOrStdin(), Format: format, RealtimeFields: realtimeFields,
				UseSinks: useSinks, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), DeadLetterPath: deadLetters,
				Registry: leasehold.NewRegistry(), Deps: deps, Logger: log,
			}
			if c.Pipeline.Kind != 0 {
				opts.Pipeline = &c.Pipeline
			}
			sum, err := localrun.Run(cmd.Context(), opts)
			if errors.Is(err, localrun.ErrUsage) {
				return usageError{errors.New(strings.TrimPrefix(err.Error(), localrun.ErrUsage.Error()+": "))}
			}
			for _, ie := range sum.InputErrors {
				fmt.Fprintln(cmd.ErrOrStderr(), "input failed:", ie)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), sum)
			switch {
			case err != nil:
				return err
			case !sum.OK():
				var why []string
				if sum.FailedInputs > 0 {
					why = append(why, fmt.Sprintf("%d of %d inputs could not be read to their end", sum.FailedInputs, sum.Inputs))
				}
				if sum.DeadLetters > 0 {
					why = append(why, fmt.Sprintf("%d of %d records were dead-lettered", sum.DeadLetters, sum.Read))
				}
				return errors.New(strings.Join(why, "; "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "input format: auto (default: '{' starts NDJSON app events, else a CloudFront standard log), cloudfront, cloudfront_realtime or app")
	f.StringSliceVar(&realtimeFields, "realtime-fields", nil, "the real-time log configuration's fields, in order (comma-separated); implies --format cloudfront_realtime")
	f.BoolVar(&useSinks, "sinks", false, "write to the config's pipeline sinks instead of stdout")
	f.StringVar(&deadLetters, "dead-letter", "", "append dead letters to this file as NDJSON (with the raw record) instead of stderr")
	return cmd
}
