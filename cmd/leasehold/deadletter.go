package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/redrive"
)

// filterFlags are the selection flags of list and replay.
type filterFlags struct {
	from               string
	stages             []string
	reason             string
	since, until       string
	stream, shard, src string
	includeReplayed    bool
}

func (f *filterFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "where the dead letters are: s3://bucket/prefix/ or a file path (default: pipeline.dead_letter of the config)")
	fl.StringSliceVar(&f.stages, "stage", nil, "only these stages (processor or sink names: parse, opensearch, ...); repeat or separate with commas")
	fl.StringVar(&f.reason, "reason", "", "only dead letters whose error matches this regular expression (case-insensitive)")
	fl.StringVar(&f.since, "since", "", "only failures at or after: RFC 3339, 2024-05-01, 2024-05-01T10, or a duration before now (24h)")
	fl.StringVar(&f.until, "until", "", "only failures before: same forms")
	fl.StringVar(&f.stream, "stream", "", "only records of this stream")
	fl.StringVar(&f.shard, "shard", "", "only records of this shard")
	fl.StringVar(&f.src, "source", "", "only records from this source: app, cloudfront, kpl (a malformed aggregate)")
	fl.BoolVar(&f.includeReplayed, "all", false, "include dead letters a replay already covered")
}

// filter turns the flags into a redrive.Filter; errors are usage errors.
func (f *filterFlags) filter(now time.Time) (redrive.Filter, error) {
	out := redrive.Filter{Stages: f.stages, Stream: f.stream, Shard: f.shard, Source: f.src, IncludeReplayed: f.includeReplayed}
	var err error
	if f.reason != "" {
		if out.Reason, err = regexp.Compile("(?i)" + f.reason); err != nil {
			return out, fmt.Errorf("--reason: %w", err)
		}
	}
	if f.since != "" {
		if out.Since, err = redrive.ParseTime(f.since, now); err != nil {
			return out, fmt.Errorf("--since: %w", err)
		}
	}
	if f.until != "" {
		if out.Until, err = redrive.ParseTime(f.until, now); err != nil {
			return out, fmt.Errorf("--until: %w", err)
		}
	}
	switch f.src {
	case "", "app", "cloudfront", "kpl", "unknown":
	default:
		return out, fmt.Errorf("--source: %q; use app, cloudfront, kpl or unknown", f.src)
	}
	return out, nil
}

// store opens where the dead letters are: --from, else the config's
// pipeline.dead_letter.
func (f *filterFlags) store(ctx context.Context, c config.Config) (redrive.Store, error) {
	if f.from != "" {
		if strings.HasPrefix(f.from, "s3://") {
			bucket, prefix, err := ingest.ParseS3URL(f.from, true)
			if err != nil {
				return nil, usageError{fmt.Errorf("--from: %w", err)}
			}
			if prefix != "" && !strings.HasSuffix(prefix, "/") {
				prefix += "/"
			}
			api, err := s3Client(ctx)
			if err != nil {
				return nil, err
			}
			return redrive.NewS3Store(api, bucket, prefix), nil
		}
		return redrive.NewFileStore(f.from), nil
	}
	if c.Pipeline.Kind == 0 {
		return nil, usageError{errors.New("no dead letters to read: give --from s3://bucket/prefix/ or --from path, or a config file whose pipeline has a dead_letter section")}
	}
	spec, err := processors.ParseSpec(&c.Pipeline)
	if err != nil {
		return nil, usageError{err}
	}
	dl := spec.DeadLetter
	switch dl.Type {
	case deadletter.TypeS3:
		var o deadletter.S3Options
		if err := dl.Options.Decode(&o); err != nil {
			return nil, usageError{err}
		}
		if o.Prefix == "" {
			o.Prefix = deadletter.DefaultPrefix
		}
		api, err := s3Client(ctx)
		if err != nil {
			return nil, err
		}
		return redrive.NewS3Store(api, o.Bucket, o.Prefix), nil
	case deadletter.TypeFile:
		var o deadletter.FileOptions
		if err := dl.Options.Decode(&o); err != nil {
			return nil, usageError{err}
		}
		return redrive.NewFileStore(o.Path), nil
	}
	return nil, usageError{fmt.Errorf("pipeline.dead_letter: type %q cannot be read back; give --from", dl.Type)}
}

func s3Client(ctx context.Context) (redrive.S3API, error) {
	cfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, usageError{err}
	}
	return awsconf.S3(cfg), nil
}

func newDeadLetterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletter",
		Short: "List dead letters with their reasons, and replay them once the cause is fixed",
	}
	cmd.AddCommand(newDeadLetterListCmd(), newDeadLetterReplayCmd())
	return cmd
}

func newDeadLetterListCmd() *cobra.Command {
	var ff filterFlags
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters: when, which stage gave up, why, and which record",
		Long: `List the dead letters of the pipeline (pipeline.dead_letter of the config, or
--from s3://bucket/prefix/ or --from a file), one line each: when it failed,
the stage that gave up, the record's source, shard and sequence number, its
event id, and the reason; then counts by stage and by reason. Dead letters a
replay already covered are left out unless --all. --json prints each dead
letter as JSON instead (with its data, the event when it carries one, and
where it was read).

Exit codes: 0 listed (even none), 1 the dead letters could not be read, 2 bad
usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			f, err := ff.filter(time.Now())
			if err != nil {
				return usageError{err}
			}
			store, err := ff.store(cmd.Context(), c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "FAILED AT\tSTAGE\tSOURCE\tSHARD\tSEQUENCE\tEVENT ID\tREPLAYED\tREASON")
			}
			shown := 0
			sum, err := redrive.List(cmd.Context(), store, f, func(l redrive.Letter) error {
				shown++
				if limit > 0 && shown > limit {
					return nil
				}
				if asJSON {
					return printLetterJSON(out, l)
				}
				replayed := ""
				if !l.Replayed.IsZero() {
					replayed = l.Replayed.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.FailedAt.UTC().Format(time.RFC3339), l.Stage, l.Source(), l.ShardID,
					letterSeq(l.SequenceNumber, l.SubSequenceNumber), orDash(l.EventID()), orDash(replayed), reasonLine(strings.TrimPrefix(l.Error, "processors: permanent failure: "), 160))
				return nil
			})
			if !asJSON {
				_ = tw.Flush()
			}
			if err != nil {
				return err
			}
			if asJSON {
				return nil
			}
			printListSummary(out, store.Name(), sum, limit)
			return nil
		},
	}
	ff.bind(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each dead letter as one JSON object per line")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most this many (all are counted); 0 prints all")
	return cmd
}

func newDeadLetterReplayCmd() *cobra.Command {
	var ff filterFlags
	var to string
	var dryRun bool
	var batch int
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Replay selected dead letters into the pipeline or the stream, once the cause is fixed",
		Long: `Replay the dead letters the filters select (see deadletter list), each record
once, then record them in a ledger beside the dead letters so that replaying
again adds nothing.

--to pipeline (the default) runs them straight through the pipeline of the
config, keeping each record's stream, shard and sequence numbers, so every
sink derives the same document ids and keys as the first time: a sink's dead
letter carrying its event goes to that sink alone; one without goes through
the processors and that sink; a processor's dead letter goes through every
processor and every sink. A record that fails again is dead-lettered again
with its new reason.

--to stream puts the records back into stream.name for the workers. It
refuses sinks' dead letters (the other sinks have the record); use it for
processors' dead letters.

Shows a progress line on a terminal (log lines otherwise) and a summary.
Exit codes: 0 every selected dead letter was replayed (or none was
selected), 1 some failed again or were refused, or the replay stopped on an
error, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
			f, err := ff.filter(time.Now())
			if err != nil {
				return usageError{err}
			}
			store, err := ff.store(cmd.Context(), c)
			if err != nil {
				return err
			}
			target, err := replayTarget(cmd.Context(), c, to, log)
			if err != nil {
				return err
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
				defer cancel()
				if err := target.Close(ctx); err != nil {
					log.Warn("closing the replay target", zap.Error(err))
				}
			}()
			opt := redrive.Options{Filter: f, BatchSize: batch, DryRun: dryRun, Progress: redrive.LogProgress(log), ProgressInterval: 10 * time.Second}
			if fh, ok := cmd.ErrOrStderr().(*os.File); ok && isatty.IsTerminal(fh.Fd()) {
				opt.Progress, opt.ProgressInterval = redrive.TerminalProgress(fh), 250*time.Millisecond
			}
			log.Info("replaying dead letters", zap.String("from", store.Name()), zap.String("to", to), zap.Bool("dry_run", dryRun))
			sum, err := redrive.Replay(cmd.Context(), store, target, opt)
			sum.Report(cmd.OutOrStdout())
			switch {
			case err != nil:
				return err
			case !sum.OK():
				return fmt.Errorf("%d dead letters failed again, %d were not replayed by --to %s", sum.FailedAgain, sum.Refused, to)
			}
			return nil
		},
	}
	ff.bind(cmd)
	cmd.Flags().StringVar(&to, "to", "pipeline", "pipeline (the config's processors and sinks) or stream (stream.name)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "select and count, send nothing")
	cmd.Flags().IntVar(&batch, "batch", 500, "dead letters of one shard sent, then recorded, at a time")
	return cmd
}

// replayTarget builds the target --to names.
func replayTarget(ctx context.Context, c config.Config, to string, log *zap.Logger) (redrive.Target, error) {
	var spec processors.Spec
	hasPipeline := c.Pipeline.Kind != 0
	if hasPipeline {
		var err error
		if spec, err = processors.ParseSpec(&c.Pipeline); err != nil {
			return nil, usageError{err}
		}
	}
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, usageError{err}
	}
	switch to {
	case "pipeline":
		if !hasPipeline {
			return nil, usageError{errors.New("--to pipeline needs a config file with a pipeline section (--config)")}
		}
		t, err := redrive.NewPipeline(ctx, leasehold.NewRegistry(), spec, leasehold.AWSDeps(awsCfg, log), log)
		if err != nil {
			return nil, usageError{err}
		}
		return t, nil
	case "stream":
		sinks := []string{"opensearch", "s3", "dynamodb", "file"}
		if hasPipeline {
			sinks = redrive.SinkNames(spec)
		}
		kc := awsconf.Kinesis(awsCfg)
		if err := checkStream(ctx, kc, c.Stream.Name); err != nil {
			return nil, usageError{err}
		}
		t, err := redrive.NewStream(kc, c.Stream.Name, sinks)
		if err != nil {
			return nil, usageError{err}
		}
		return t, nil
	}
	return nil, usageError{fmt.Errorf("--to %q: use pipeline or stream", to)}
}

func printLetterJSON(w io.Writer, l redrive.Letter) error {
	type out struct {
		redrive.Letter
		Key      string `json:"key"`
		Origin   string `json:"origin"`
		Source   string `json:"source"`
		Replayed string `json:"replayed_at,omitempty"`
	}
	o := out{Letter: l, Key: l.Key(), Origin: l.Origin, Source: l.Source()}
	if !l.Replayed.IsZero() {
		o.Replayed = l.Replayed.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func printListSummary(w io.Writer, from string, sum redrive.ListSummary, limit int) {
	fmt.Fprintf(w, "\n%d dead letters in %s", sum.Matched, from)
	if limit > 0 && sum.Matched > limit {
		fmt.Fprintf(w, " (first %d shown)", limit)
	}
	if sum.Replayed > 0 {
		fmt.Fprintf(w, ", %d of them replayed before", sum.Replayed)
	}
	if sum.Unreadable > 0 {
		fmt.Fprintf(w, "; %d unreadable lines", sum.Unreadable)
	}
	fmt.Fprintln(w)
	if sum.Matched == 0 {
		return
	}
	fmt.Fprintln(w, "by stage and reason:")
	type kv struct {
		k string
		n int
	}
	var rs []kv
	for k, n := range sum.ByReason {
		rs = append(rs, kv{k, n})
	}
	sortKV := func(a, b kv) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.k, b.k)
	}
	slices.SortFunc(rs, sortKV)
	for i, r := range rs {
		if i == 15 {
			fmt.Fprintf(w, "  ... %d more reasons\n", len(rs)-15)
			break
		}
		fmt.Fprintf(w, "  %6d  %s\n", r.n, r.k)
	}
}

func letterSeq(seq string, sub int64) string {
	if len(seq) > 12 {
		seq = "…" + seq[len(seq)-12:]
	}
	if sub != 0 {
		return fmt.Sprintf("%s/%d", seq, sub)
	}
	return seq
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reasonLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
