package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
)

func newIngestCmd() *cobra.Command {
	var resume, skipClaimed bool
	var startLine int
	cmd := &cobra.Command{
		Use:   "ingest s3://bucket/key ...",
		Short: "Send the lines of CloudFront log files in S3 to the stream",
		Long: `Read each CloudFront standard-log file (gzipped or not) from S3 and put one
record per line into the stream (stream.name), ingest.concurrency files at a
time, rate limited to the stream's capacity (ingest.*_per_second). Prints a
summary; the exit code is 0 when every file was sent, 1 when any failed, 2
for bad usage.

With --resume, progress is recorded in the manifest table
(ingest.manifest_table): files already done are skipped and partial ones
continue where they stopped, and each file is claimed by one run at a time
(another run ingesting it is waited for; see backfill --help). Without it
every file is sent from --start-line on.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			var refs []ingest.ObjectRef
			for _, a := range args {
				bucket, key, err := ingest.ParseS3URL(a, false)
				if err != nil {
					return usageError{err}
				}
				refs = append(refs, ingest.ObjectRef{Bucket: bucket, Key: key})
			}
			if startLine < 0 {
				return usageError{errors.New("--start-line must not be negative")}
			}
			if resume && c.Ingest.ManifestTable == "" {
				return usageError{errors.New("--resume needs ingest.manifest_table (--ingest.manifest-table, LEASEHOLD_INGEST_MANIFEST_TABLE)")}
			}
			in, err := newIngester(cmd.Context(), c, log, resume)
			if err != nil {
				return err
			}
			opt := runOptions(cmd, c, log)
			opt.StartLine = startLine
			opt.SkipClaimed = skipClaimed
			sum, err := in.IngestFiles(cmd.Context(), refs, opt)
			return finishRun(cmd, in, sum, err, log)
		},
	}
	cmd.Flags().BoolVar(&resume, "resume", false, "record progress in ingest.manifest_table: skip files done before, resume partial ones")
	cmd.Flags().IntVar(&startLine, "start-line", 0, "skip the data lines up to this line number of each file (1-based, header lines count)")
	cmd.Flags().BoolVar(&skipClaimed, "skip-claimed", false, "with --resume, leave files another run is ingesting to that run instead of waiting for them (exit code 1 if any)")
	return cmd
}

// newIngester wires an ingester from the configuration: AWS clients from
// the default chain, the rate limit (derived from the stream's open shards
// unless set), and the manifest when withManifest.
func newIngester(ctx context.Context, c config.Config, log *zap.Logger, withManifest bool) (*ingest.Ingester, error) {
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, usageError{err}
	}
	kc := awsconf.Kinesis(awsCfg)
	ic := c.Ingest
	lim, err := ingest.StreamLimiter(ctx, kc, c.Stream.Name, ic.RecordsPerSecond, ic.BytesPerSecond, ic.CapacityShare, ic.Aggregate)
	if err != nil {
		return nil, fmt.Errorf("%w (set ingest.records_per_second and ingest.bytes_per_second to skip ListShards)", err)
	}
	cfg := ingest.Config{Aggregate: ic.Aggregate, CheckpointLines: ic.CheckpointLines, Limiter: lim, Logger: log,
		ClaimDuration: ic.ClaimDuration}
	if withManifest {
		cfg.Manifest = ingest.NewDynamoManifest(awsconf.DynamoDB(awsCfg), ic.ManifestTable)
	}
	in, err := ingest.New(awsconf.S3(awsCfg), kc, c.Stream.Name, cfg)
	if err != nil {
		return nil, usageError{err}
	}
	r, b := lim.Rates()
	log.Info("ingesting", zap.String("stream", c.Stream.Name), zap.Bool("aggregate", ic.Aggregate),
		zap.Float64("records_per_sec_limit", r), zap.Float64("bytes_per_sec_limit", b), zap.Bool("manifest", withManifest),
		zap.String("run", in.Owner()))
	return in, nil
}

// runOptions picks the progress display: a status line on a terminal,
// else a log line every 10 seconds.
func runOptions(cmd *cobra.Command, c config.Config, log *zap.Logger) ingest.RunOptions {
	opt := ingest.RunOptions{Concurrency: c.Ingest.Concurrency, Progress: ingest.LogProgress(log), ProgressInterval: 10 * time.Second}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		opt.Progress, opt.ProgressInterval = ingest.TerminalProgress(f), 250*time.Millisecond
	}
	return opt
}

// finishRun flushes the producer, prints the summary and turns a run with
// failures into an error (exit code 1).
func finishRun(cmd *cobra.Command, in *ingest.Ingester, sum ingest.Summary, runErr error, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
	defer cancel()
	closeErr := in.Close(ctx)
	sum.Report(cmd.OutOrStdout())
	switch {
	case runErr != nil:
		return runErr
	case sum.Failed > 0:
		return fmt.Errorf("%d of %d files failed", sum.Failed, sum.Done+sum.Failed+sum.Skipped)
	case sum.Interrupted:
		return errors.New("interrupted; run again to resume")
	case sum.NotWaited > 0:
		return fmt.Errorf("%d files are being ingested by another run (%s) and were left to it (--skip-claimed)", sum.NotWaited, sum.ClaimedBy)
	case closeErr != nil:
		return closeErr
	}
	log.Debug("run finished", zap.Int("done", sum.Done))
	return nil
}
