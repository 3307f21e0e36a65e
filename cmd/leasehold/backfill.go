package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/ingest"
)

func newBackfillCmd() *cobra.Command {
	var from, to string
	var skipClaimed bool
	cmd := &cobra.Command{
		Use:   "backfill s3://bucket/prefix",
		Short: "Replay historical CloudFront log files from S3 into the stream, resumably",
		Long: `List the objects under the prefix (page by page), keep the CloudFront log files
(<prefix>/<distribution>.YYYY-MM-DD-HH.<unique>.gz) whose hour is in
[--from, --to), and send their lines to the stream (stream.name),
ingest.concurrency files at a time, rate limited to ingest.capacity_share of
the stream's write capacity (or ingest.records_per_second and
ingest.bytes_per_second).

Progress is recorded per file in the manifest table (ingest.manifest_table,
created if missing): a rerun after a crash or Ctrl-C skips finished files and
resumes a partial one at its last confirmed line.

Each file is claimed in the manifest by one run at a time, like a lease
(renewed every third of ingest.claim_duration). A file another run is
ingesting is left for the end of this run, then waited for: finished by that
run (skipped here), released by it, or taken over once its claim went
unrenewed for ingest.claim_duration (a crashed run). With --skip-claimed such
files are left to the other run and reported. So two backfills of one prefix
send every line once.

Shows a progress line on a terminal, log lines otherwise, and a summary at the
end. Exit code 0 when every file was sent (by this run or another), 1 when any
failed, was left to another run (--skip-claimed) or the run was interrupted,
2 for bad usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			bucket, prefix, err := ingest.ParseS3URL(args[0], true)
			if err != nil {
				return usageError{err}
			}
			var r ingest.TimeRange
			if from != "" {
				if r.From, err = ingest.ParseTime(from); err != nil {
					return usageError{err}
				}
			}
			if to != "" {
				if r.To, err = ingest.ParseTime(to); err != nil {
					return usageError{err}
				}
			}
			if !r.From.IsZero() && !r.To.IsZero() && !r.To.After(r.From) {
				return usageError{errors.New("--to must be after --from")}
			}
			if c.Ingest.ManifestTable == "" {
				return usageError{errors.New("ingest.manifest_table: backfill needs a manifest table to resume (--ingest.manifest-table, LEASEHOLD_INGEST_MANIFEST_TABLE)")}
			}
			in, err := newIngester(cmd.Context(), c, log, true)
			if err != nil {
				return err
			}
			opt := runOptions(cmd, c, log)
			opt.SkipClaimed = skipClaimed
			sum, err := in.Backfill(cmd.Context(), ingest.BackfillSpec{Bucket: bucket, Prefix: prefix, Range: r}, opt)
			return finishRun(cmd, in, sum, err, log)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first hour to include, UTC: 2024-05-01, 2024-05-01T10 or RFC 3339 (default: no bound)")
	cmd.Flags().StringVar(&to, "to", "", "hour to stop before, UTC, same forms (default: no bound)")
	cmd.Flags().BoolVar(&skipClaimed, "skip-claimed", false, "leave files another run is ingesting to that run instead of waiting for them (exit code 1 if any)")
	return cmd
}
