package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// kclDollarsPerShardMonth is the Java KCL's lease renewals alone: every
// lease renewed about every 3.3 s (1,088 writes per shard-hour at any
// spread) at the on-demand write price.
const kclDollarsPerShardMonth = 1088 * writePrice * hoursPerMonth

// PrintLeases renders the process scenarios as Markdown tables with each
// target.
func PrintLeases(w io.Writer, r LeaseResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	row := func(figure, measured, target string) { fmt.Fprintf(tw, "| %s\t %s\t %s\t\n", figure, measured, target) }
	row("figure", "measured", "target")
	row("---", "---", "---")
	row("crash failover: SIGKILL → every orphaned shard read by a peer (max)", secs(r.Failover, 1), fmt.Sprintf("≤ lease duration + 2 s = %.0f s", (r.Duration+2*time.Second).Seconds()))
	row("… of which: SIGKILL → every orphaned lease taken (max)", secs(r.FailoverTaken, 1), "")
	row("graceful handoff: SIGTERM → every released shard read by a peer (max)", secs(r.Handoff, 2), "< 2 s")
	row(fmt.Sprintf("scale-out %d → %d workers, %d shards: start → balanced", r.Workers, r.Workers+1, r.Shards), fmt.Sprintf("%s (%.1f take intervals)", secs(r.Convergence, 1), r.Convergence.Seconds()/r.TakeInterval.Seconds()), "≤ 2 take intervals")
	row("… planned moves", fmt.Sprint(r.ScaleOutMoves), fmt.Sprintf("≤ minimum + 10%% (minimum %d)", r.Shards/(r.Workers+1)))
	row("duplicates from planned moves (scale-out, SIGTERM)", fmt.Sprint(r.PlannedDuplicates), "0")
	row("duplicates after SIGKILL (records it processed but had not checkpointed)", fmt.Sprint(r.KillDuplicates), "within one checkpoint interval")
	row("records processed under an old lease after the new owner's first (all scenarios)", fmt.Sprint(r.Late), "0")
	for _, c := range []struct {
		name    string
		cost    Cost
		workers int
	}{{"while consuming", r.Consuming, r.Workers + 1}, {"at rest", r.Rest, r.Workers - 1}} {
		rd, wr := c.cost.PerShardHour()
		row(fmt.Sprintf("lease coordination %s (%d shards, %d workers): read / write units per shard-hour", c.name, r.Shards, c.workers), fmt.Sprintf("%.0f / %.0f", rd, wr), "")
		row("… dollars per shard-month (on-demand)", fmt.Sprintf("$%.3f", c.cost.DollarsPerShardMonth()), fmt.Sprintf("Java KCL renewals alone: $%.2f", kclDollarsPerShardMonth))
	}
	row("checkpoint writes while consuming (1 s interval), dollars per shard-month", fmt.Sprintf("$%.3f", r.Consuming.CheckpointDollarsPerShardMonth()), "follows worker.checkpoint_interval")
	tw.Flush()
	fmt.Fprintf(w, "\nSettings: lease duration %s, renew %s, take interval %s. Units by call at rest (%s): %s\n", r.Duration, r.Renew, r.TakeInterval, r.Rest.Window, labels(r.Rest))
	if len(r.Faults) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### One worker's lease table misbehaves (its Kinesis does not)\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	row5 := func(a, b, c, d, e string) { fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %s\t\n", a, b, c, d, e) }
	row5("fault, held for", "shards moved / held", "takeover (fault start → peer's first record)", "records by the old owner after takeover", "overlap")
	row5("---", "---", "---", "---", "---")
	for _, f := range r.Faults {
		take := "— (kept its leases)"
		if f.Moved > 0 {
			take = fmt.Sprintf("%s (gap ≥ %s)", secs(f.Takeover, 1), secs(f.Gap, 1))
		}
		row5(fmt.Sprintf("%s, %s", f.Name, f.Hold), fmt.Sprintf("%d / %d", f.Moved, f.Held), take, fmt.Sprint(f.Late), secs(f.Overlap, 1))
	}
	tw.Flush()
}

// PrintScale renders the scale scenarios.
func PrintScale(w io.Writer, rs []ScaleResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	row := func(cells ...string) { fmt.Fprintf(tw, "| %s\t\n", strings.Join(cells, "\t ")) }
	row("shards / workers (store)", "cold start → balanced (moves)", "scale-out (moves / minimum)", "… scans, requests, fenced / lost, read / write units", "at rest: read / write units per shard-hour", "dollars per shard-month", "target")
	row("---", "---", "---", "---", "---", "---", "---")
	for _, r := range rs {
		rd, wr := r.Rest.PerShardHour()
		row(fmt.Sprintf("%d / %d (%s)", r.Shards, r.Workers, r.Backend),
			fmt.Sprintf("%s (%d)", secs(r.ColdStart, 1), r.ColdMoves),
			fmt.Sprintf("+%d: %s (%d / %d)", r.Added, secs(r.ScaleOut, 1), r.ScaleOutMoves, r.ScaleOutMin),
			fmt.Sprintf("%d, %d, %d / %d, %.0f / %.0f", r.ScaleOutScans, r.ScaleOutRequests, r.ScaleOutFenced, r.ScaleOutLost, r.ScaleOutUnits.Read, r.ScaleOutUnits.Write),
			fmt.Sprintf("%.1f / %.1f", rd, wr),
			fmt.Sprintf("$%.4f", r.Rest.DollarsPerShardMonth()),
			"≤ $0.05; moves ≤ minimum + 10%")
	}
	tw.Flush()
}

func secs(d time.Duration, prec int) string {
	return fmt.Sprintf("%.*f s", prec, d.Seconds())
}

func labels(c Cost) string {
	var names []string
	for l := range c.ByLabel {
		names = append(names, l)
	}
	sort.Strings(names)
	out := ""
	for _, l := range names {
		ls := c.ByLabel[l]
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("%s %d calls (%.1f R, %.1f W)", l, ls.Calls, ls.ReadUnits, ls.WriteUnits)
	}
	return out
}

// PrintSpreads renders the spread scenarios: at rest beside the Java
// KCL's model, and what one joining worker costs.
func PrintSpreads(w io.Writer, rs []SpreadResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	row := func(cells ...string) { fmt.Fprintf(tw, "| %s\t\n", strings.Join(cells, "\t ")) }
	row("shards per worker (shards / workers)", "ours at rest: read / write units per shard-hour", "ours: $ per shard-month", "KCL 2.x: read / write", "KCL 2.x: $", "KCL 3.x: read / write", "KCL 3.x: $", "ours ÷ KCL 2.x, 3.x", "≤ ⅓ of both")
	row("---", "---", "---", "---", "---", "---", "---", "---", "---")
	for _, r := range rs {
		rd, wr := r.Rest.PerShardHour()
		ours, k2, k3 := r.Dollars()
		sh := float64(r.Shards)
		ok := "no"
		if ours <= k2/3 && ours <= k3/3 {
			ok = "yes"
		}
		row(fmt.Sprintf("%d (%d / %d)", r.Spread, r.Shards, r.Workers),
			fmt.Sprintf("%.0f / %.0f", rd, wr), fmt.Sprintf("$%.3f", ours),
			fmt.Sprintf("%.0f / %.0f", r.KCL2.Read/sh, r.KCL2.Write/sh), fmt.Sprintf("$%.3f", k2),
			fmt.Sprintf("%.0f / %.0f", r.KCL3.Read/sh, r.KCL3.Write/sh), fmt.Sprintf("$%.3f", k3),
			fmt.Sprintf("%.2f, %.2f", ours/k2, ours/k3), ok)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	row = func(cells ...string) { fmt.Fprintf(tw, "| %s\t\n", strings.Join(cells, "\t ")) }
	row("shards per worker", "one worker joins: balanced after", "moves / minimum", "scans", "read / write units beyond rest", "$ per join", "… per shard-month at one join an hour")
	row("---", "---", "---", "---", "---", "---", "---")
	for _, r := range rs {
		row(fmt.Sprint(r.Spread), secs(r.JoinTime, 1), fmt.Sprintf("%d / %d", r.JoinMoves, r.JoinMin), fmt.Sprint(r.JoinScans),
			fmt.Sprintf("%.0f / %.0f", r.Join.Read, r.Join.Write), fmt.Sprintf("$%.6f", r.JoinDollars()),
			fmt.Sprintf("$%.4f", r.JoinDollars()*hoursPerMonth/float64(r.Shards)))
	}
	tw.Flush()
}
