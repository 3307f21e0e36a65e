package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/lease"
)

func newLeasesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leases",
		Short: "Print the lease table: shard, owner, checkpoint, state, parents, last change",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			awsCfg, err := awsconf.Load(cmd.Context())
			if err != nil {
				return usageError{err}
			}
			store := lease.NewDynamoStore(awsconf.DynamoDB(awsCfg), c.Lease.Table)
			snap, err := store.Snapshot(cmd.Context())
			if err != nil {
				return err
			}
			printLeases(cmd.OutOrStdout(), snap, time.Now())
			return nil
		},
	}
	return cmd
}

// printLeases renders the table. "last change" is the writer's wall-clock
// stamp, for people only.
func printLeases(out io.Writer, snap lease.Snapshot, now time.Time) {
	sort.Slice(snap.Leases, func(i, j int) bool { return snap.Leases[i].ShardID < snap.Leases[j].ShardID })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tOWNER\tEPOCH\tCHECKPOINT\tSTATE\tPARENTS\tLAST CHANGE")
	for _, l := range snap.Leases {
		state := "active"
		switch {
		case l.Ended():
			state = "ended"
		case l.Owner == "":
			state = "unowned"
		case l.HandoffTo != "":
			state = "handoff→" + l.HandoffTo
		}
		owner := l.Owner
		if owner == "" {
			owner = "-"
		}
		parents := strings.Join(l.Parents, ",")
		if parents == "" {
			parents = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.ShardID, owner, l.Epoch, shortSeq(l.Checkpoint.Position.String()), state, parents, ago(now, l.UpdatedAt))
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHEARTBEAT\tHELD\tSTATE\tLAST HEARTBEAT")
	sort.Slice(snap.Workers, func(i, j int) bool { return snap.Workers[i].ID < snap.Workers[j].ID })
	for _, w := range snap.Workers {
		state := "running"
		if w.Stopping {
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
