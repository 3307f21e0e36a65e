package ingest

import (
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
)

// TerminalProgress returns a Progress function that redraws one status
// line on w (a terminal): a bar of bytes (of files when sizes are
// unknown), files finished of found, size read, lines per second and the
// time left. The final snapshot ends the line. Call the function from one
// goroutine at a time, as RunOptions.Progress is.
func TerminalProgress(w io.Writer) func(Progress) {
	var rate rateMeter
	return func(p Progress) {
		linesPerSec, bytesPerSec := rate.update(p)
		finished := p.Done + p.Failed + p.Skipped
		frac := 0.0
		switch {
		case p.BytesTotal > 0:
			frac = 1 - float64(p.BytesRemaining)/float64(p.BytesTotal)
		case p.Files > 0:
			frac = float64(finished) / float64(p.Files)
		}
		const width = 24
		filled := min(width, max(0, int(frac*width)))
		more := ""
		if p.Listing {
			more = "+"
		}
		fmt.Fprintf(w, "\r[%s%s] %d/%d%s files", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), finished, p.Files, more)
		if p.Failed > 0 {
			fmt.Fprintf(w, " (%d failed)", p.Failed)
		}
		if p.Waiting > 0 {
			fmt.Fprintf(w, " (%d claimed by another run)", p.Waiting)
		}
		fmt.Fprintf(w, "  %s", humanBytes(p.BytesRead))
		if p.BytesTotal > 0 {
			fmt.Fprintf(w, "/%s%s", humanBytes(p.BytesTotal), more)
		}
		fmt.Fprintf(w, "  %.0f lines/s", linesPerSec)
		if eta, ok := estimate(p, bytesPerSec); ok {
			fmt.Fprintf(w, "  ETA %s", eta)
		}
		fmt.Fprint(w, "\x1b[K") // clear the rest of the line
		if p.Final {
			fmt.Fprintln(w)
		}
	}
}

// estimate returns the time left, when it can be told: sizes known,
// listing over, and bytes moving.
func estimate(p Progress, bytesPerSec float64) (time.Duration, bool) {
	if p.Listing || p.BytesTotal == 0 || bytesPerSec <= 0 {
		return 0, false
	}
	return time.Duration(float64(p.BytesRemaining) / bytesPerSec * float64(time.Second)).Round(time.Second), true
}

// LogProgress returns a Progress function that logs each snapshot at Info
// as "progress", with counts, bytes, lines per second and the estimated
// time left, for runs whose output is not a terminal. Call it from one
// goroutine at a time.
func LogProgress(log *zap.Logger) func(Progress) {
	var rate rateMeter
	return func(p Progress) {
		linesPerSec, bytesPerSec := rate.update(p)
		fields := []zap.Field{
			zap.Int("files", p.Files), zap.Bool("listing", p.Listing), zap.Int("done", p.Done), zap.Int("failed", p.Failed),
			zap.Int("skipped", p.Skipped), zap.Int("active", p.Active), zap.Int("claimed_by_another_run", p.Waiting), zap.Int64("bytes_read", p.BytesRead),
			zap.Int64("bytes_total", p.BytesTotal), zap.Int64("lines", p.Records), zap.Float64("lines_per_sec", linesPerSec),
		}
		if eta, ok := estimate(p, bytesPerSec); ok {
			fields = append(fields, zap.Duration("eta", eta))
		}
		log.Info("progress", fields...)
	}
}

// rateMeter turns successive snapshots into rates, smoothed over the
// last few snapshots so one slow interval does not swing the ETA; the
// final snapshot gets the run's average.
type rateMeter struct {
	prev            Progress
	lines, bytes    float64
	started, primed bool
}

func (r *rateMeter) update(p Progress) (linesPerSec, bytesPerSec float64) {
	if s := p.Elapsed.Seconds(); p.Final && s > 0 {
		return float64(p.Records) / s, float64(p.BytesRead) / s // the run's average
	}
	if !r.started {
		r.started, r.prev = true, p
		if s := p.Elapsed.Seconds(); s > 0 {
			r.lines, r.bytes = float64(p.Records)/s, float64(p.BytesRead)/s
		}
		return r.lines, r.bytes
	}
	dt := (p.Elapsed - r.prev.Elapsed).Seconds()
	if dt > 0 {
		l, b := float64(p.Records-r.prev.Records)/dt, float64(p.BytesRead-r.prev.BytesRead)/dt
		const keep = 0.7
		if !r.primed {
			r.lines, r.bytes, r.primed = l, b, true
		} else {
			r.lines, r.bytes = keep*r.lines+(1-keep)*l, keep*r.bytes+(1-keep)*b
		}
		r.prev = p
	}
	return r.lines, r.bytes
}

// humanBytes formats n in decimal units: "512 B", "3.4 MB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
