package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/lease"
)

func newLeasesCmd() *cobra.Command {
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "Print the lease table: shard, owner, checkpoint, lag, state, parents, last change",
		Long: `Print the lease table of lease.table: every shard with its owner, epoch,
checkpoint, lag behind the stream tip at the last checkpoint, state and
parents, then every worker with its heartbeat. With --watch, redraw it every
--interval until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every < 100*time.Millisecond {
				return usageError{fmt.Errorf("--interval %s is too short; use at least 100ms", every)}
			}
			table, store, err := openLeaseTable(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tty := false
			if f, ok := out.(*os.File); ok {
				tty = isatty.IsTerminal(f.Fd())
			}
			for {
				snap, err := store.Snapshot(cmd.Context())
				if err != nil {
					if watch && cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if watch && tty {
					fmt.Fprint(out, "\033[H\033[2J") // home and clear: redraw in place
				}
				if watch {
					fmt.Fprintf(out, "%s  table %s\n\n", time.Now().Format("15:04:05"), table)
				}
				printLeases(out, snap, time.Now())
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
				if !tty {
					fmt.Fprintln(out)
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw the table every --interval until interrupted")
	cmd.Flags().DurationVar(&every, "interval", time.Second, "refresh interval for --watch")
	cmd.AddCommand(newLeasesMigrateCmd())
	return cmd
}

// openLeaseTable loads the configuration and opens lease.table through
// the AWS SDK's default chain; it returns the table's name beside it.
func openLeaseTable(cmd *cobra.Command) (string, *lease.DynamoStore, error) {
	c, _, err := loadConfig(cmd)
	if err != nil {
		return "", nil, err
	}
	awsCfg, err := awsconf.Load(cmd.Context())
	if err != nil {
		return "", nil, usageError{err}
	}
	store, err := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), c.Lease.Table)
	if err != nil {
		return "", nil, usageError{err}
	}
	return c.Lease.Table, store, nil
}

func newLeasesMigrateCmd() *cobra.Command {
	var from string
	var force bool
	cmd := &cobra.Command{
		Use:   "migrate --from OLD_TABLE",
		Short: "Copy the checkpoints of a lease table written by an earlier version into lease.table",
		Long: `Copy every lease (checkpoint, epoch, parents) of OLD_TABLE, a lease table of
the single-key schema of earlier versions, into lease.table, created if missing,
so that workers of this version go on where the old ones stopped. Stop the old
workers first: owners are not copied, and a worker item still in OLD_TABLE (a
running or crashed worker) is refused unless --force. Leases already in
lease.table are left alone, so it can be run again. OLD_TABLE is not changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageError{fmt.Errorf("--from: name the old lease table")}
			}
			table, store, err := openLeaseTable(cmd)
			if err != nil {
				return err
			}
			m, err := store.Migrate(cmd.Context(), from, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d leases from %s into %s (%d were there already); start the workers with lease.table = %s\n",
				m.Copied, from, table, m.Present, table)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the lease table of the earlier version")
	cmd.Flags().BoolVar(&force, "force", false, "copy even though worker items of the earlier version are left (crashed workers)")
	return cmd
}

// printLeases renders the table. "last change" is the writer's wall-clock
// stamp, for people only.
func printLeases(out io.Writer, snap lease.Snapshot, now time.Time) {
	sort.Slice(snap.Leases, func(i, j int) bool { return snap.Leases[i].ShardID < snap.Leases[j].ShardID })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tOWNER\tEPOCH\tCHECKPOINT\tLAG\tSTATE\tPARENTS\tLAST CHANGE")
	for _, l := range snap.Leases {
		state := leasehold.LeaseState(l)
		owner := l.Owner
		if owner == "" {
			owner = "-"
		}
		parents := strings.Join(l.Parents, ",")
		if parents == "" {
			parents = "-"
		}
		lag := "-"
		if l.Checkpoint.MillisBehind > 0 || (!l.Checkpoint.Position.IsSentinel() && !l.Checkpoint.Position.IsZero()) {
			lag = (time.Duration(l.Checkpoint.MillisBehind) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", l.ShardID, owner, l.Epoch, shortSeq(l.Checkpoint.Position.String()), lag, state, parents, ago(now, l.UpdatedAt))
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHEARTBEAT\tHELD\tSTATE\tLAST HEARTBEAT")
	sort.Slice(snap.Workers, func(i, j int) bool { return snap.Workers[i].ID < snap.Workers[j].ID })
	for _, w := range snap.Workers {
		state := "running"
		switch {
		case w.Dead:
			state = "declared dead"
		case w.Stopping:
			state = "stopping"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", w.ID, w.Heartbeat, w.Held, state, ago(now, w.UpdatedAt))
	}
	tw.Flush()
}

// shortSeq keeps long sequence numbers readable: head…tail.
func shortSeq(s string) string {
	if len(s) <= 24 {
		return s
	}
	return s[:8] + "…" + s[len(s)-12:]
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
