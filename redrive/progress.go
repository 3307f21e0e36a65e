package redrive

import (
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
)

// TerminalProgress returns an Options.Progress function that redraws one
// status line on w (a terminal): a bar of dead letters done of selected,
// replayed and failed counts, the rate and the time left.
func TerminalProgress(w io.Writer) func(Progress) {
	return func(p Progress) {
		const width = 24
		frac := 0.0
		if p.Selected > 0 {
			frac = float64(p.Done) / float64(p.Selected)
		}
		filled := min(width, max(0, int(frac*width)))
		fmt.Fprintf(w, "\r[%s%s] %d/%d dead letters  %d replayed", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			p.Done, p.Selected, p.Replayed)
		if p.Failed > 0 {
			fmt.Fprintf(w, ", %d not", p.Failed)
		}
		if rate, eta, ok := rateETA(p); ok {
			fmt.Fprintf(w, "  %.0f/s  ETA %s", rate, eta)
		}
		fmt.Fprint(w, "\x1b[K")
		if p.Final {
			fmt.Fprintln(w)
		}
	}
}

// LogProgress returns an Options.Progress function that logs each
// snapshot at Info, for runs whose output is not a terminal.
func LogProgress(log *zap.Logger) func(Progress) {
	return func(p Progress) {
		fields := []zap.Field{zap.Int("selected", p.Selected), zap.Int("done", p.Done), zap.Int("replayed", p.Replayed),
			zap.Int("not_replayed", p.Failed), zap.Duration("elapsed", p.Elapsed)}
		if rate, eta, ok := rateETA(p); ok {
			fields = append(fields, zap.Float64("per_sec", rate), zap.Duration("eta", eta))
		}
		log.Info("replay progress", fields...)
	}
}

func rateETA(p Progress) (rate float64, eta time.Duration, ok bool) {
	if p.Done == 0 || p.Elapsed <= 0 {
		return 0, 0, false
	}
	rate = float64(p.Done) / p.Elapsed.Seconds()
	eta = time.Duration(float64(p.Selected-p.Done) / rate * float64(time.Second)).Round(time.Second)
	return rate, eta, true
}

// Report writes the summary for people: counts, then the first 20 dead
// letters not replayed with why.
func (s Summary) Report(w io.Writer) {
	verb := "replayed"
	if s.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "dead letters: %d read, %d selected (%d duplicates of one record sent once), %d skipped as replayed before",
		s.Scanned, s.Selected, s.Duplicates, s.AlreadyReplayed)
	if s.Unreadable > 0 {
		fmt.Fprintf(w, ", %d unreadable lines", s.Unreadable)
	}
	fmt.Fprintln(w)
	if s.DryRun {
		fmt.Fprintf(w, "%s: %d, by stage: %s\n", verb, s.Selected, stageCounts(s.ByStage))
		return
	}
	fmt.Fprintf(w, "%s: %d, failed again: %d (dead-lettered again), not replayed by this target: %d; took %s\n",
		verb, s.Replayed, s.FailedAgain, s.Refused, s.Duration.Round(time.Millisecond))
	for i, f := range s.Failures {
		if i == 20 {
			fmt.Fprintf(w, "  ... and %d more\n", s.FailedAgain+s.Refused-20)
			break
		}
		fmt.Fprintf(w, "not replayed: %s %s/%s (%s): %v\n", f.Letter.Stage, f.Letter.ShardID, f.Letter.SequenceNumber, f.Letter.Origin, f.Err)
	}
}

func stageCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
