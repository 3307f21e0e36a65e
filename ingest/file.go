package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/producer"
)

// FileOptions adjusts one Ingest call.
type FileOptions struct {
	// StartLine skips the data lines up to this line number without
	// sending them (header lines before it still apply). The manifest's
	// offset is used instead when it is further on.
	StartLine int
	// StopReadingAt, when set, stops reading at that time: the records in
	// flight are confirmed, the offset recorded, and the result fails with
	// ErrInterrupted so a retry resumes. A Lambda sets it a margin before
	// its deadline.
	StopReadingAt time.Time
	// Progress, when set, is called from the calling goroutine every
	// Config.ProgressLines lines read and once at the end.
	Progress func(FileProgress)
	// WaitClaimed makes Ingest wait when another run holds the file's
	// claim in the manifest: until that run finishes the file (the result
	// is then Skipped, with OtherRun set), gives it up (then this run
	// begins it), or stops renewing its claim for a whole claim duration
	// (then this run takes it over and resumes at its offset), or until
	// ctx ends or StopReadingAt passes. Without it Ingest fails at once
	// with a FileError wrapping a *ClaimedError.
	WaitClaimed bool
}

// FileProgress is how far the reading of one file got.
type FileProgress struct {
	URL      string // s3://bucket/key
	Line     int    // last line read
	Records  int64  // data lines put this run
	Bytes    int64  // compressed bytes read
	RawBytes int64  // decompressed bytes of the lines read
}

// FileResult is the outcome of ingesting one file.
type FileResult struct {
	// Object is the file, with its ETag once known.
	Object ObjectRef
	// Skipped: the manifest says the file is done; nothing was read.
	Skipped bool
	// StartLine: lines up to it were skipped (resume offset).
	StartLine int
	// EndLine: every data line up to it is confirmed written; the last
	// line of the file when Err is nil. This is the offset recorded.
	EndLine int
	// Records: data lines confirmed written by this run.
	Records int64
	// ResumeSkipped: data lines skipped because they were at or before
	// StartLine.
	ResumeSkipped int64
	// BadLines: lines not sent because they cannot be (longer than
	// cloudfront.MaxIngestLineBytes, or after a rejected #Fields header).
	BadLines int64
	// Malformed: lines sent although their field count does not match
	// their layout; the consumer dead-letters them with the raw line.
	Malformed int64
	// Bytes and RawBytes: compressed bytes read, decompressed line bytes.
	Bytes, RawBytes int64
	// ClaimedBy names the other run found holding the file's claim, if
	// any; OtherRun reports that it finished the file while this run
	// waited; TookOver that this run took the file over after that run's
	// claim went unrenewed for a claim duration.
	ClaimedBy          string
	OtherRun, TookOver bool
	// Duration is how long the Ingest call took.
	Duration time.Duration
	// Err is nil, or a *FileError: see Retryable.
	Err error
}

// Ingest sends the data lines of one object to the stream, one record per
// line, and blocks until every line read is confirmed written (or the
// drain timeout passes). It checks the manifest first, if the ingester has
// one: a file done with the same ETag is skipped, a partial one resumes
// after its offset. Progress is checkpointed as lines are confirmed.
//
// When ctx ends or opt.StopReadingAt passes, reading stops, the records in
// flight get up to Config.DrainTimeout (and never past ctx's deadline) to
// be confirmed, the offset is recorded and the error wraps ErrInterrupted.
// The returned error is the result's Err: nil, or a *FileError carrying the
// key and the line reached (Retryable says whether to try again). A bad
// file never affects other files ingested concurrently.
func (in *Ingester) Ingest(ctx context.Context, ref ObjectRef, opt FileOptions) (FileResult, error) {
	began := time.Now()
	release := in.acquire(ctx)
	defer release()
	f := &fileRun{in: in, ref: ref, url: ref.URL(), opt: opt, log: in.log.With(zap.String("file", ref.URL()))}
	res := f.run(ctx)
	res.Duration = time.Since(began)
	return res, res.Err
}

// fileRun is one Ingest call. Owned by the calling goroutine.
type fileRun struct {
	in  *Ingester
	ref ObjectRef
	url string
	opt FileOptions
	log *zap.Logger

	entry   Entry  // manifest entry as begun
	tracked bool   // entry was begun: this run holds the claim
	endHold func() // stops renewing the claim; nil when not holding
	t       *tracker
	ckLine  int       // last offset recorded
	ckBelow int64     // records below the watermark at the last checkpoint
	ckTime  time.Time // when it was recorded (or last tried)
	sent    int64     // records put
}

func (f *fileRun) run(ctx context.Context) FileResult {
	res := FileResult{Object: f.ref, StartLine: f.opt.StartLine}
	m := f.in.cfg.Manifest
	if m != nil && f.ref.ETag != "" {
		if done := f.claim(ctx, &res); done || res.Err != nil {
			return res
		}
	}
	defer f.endClaim()
	body, etag, err := f.in.open(ctx, f.ref)
	if err != nil {
		return f.failed(ctx, res, 0, err)
	}
	defer body.Close()
	if f.ref.ETag == "" {
		if etag == "" {
			etag = "none"
		}
		f.ref.ETag, res.Object.ETag = etag, etag
		if m != nil {
			if done := f.claim(ctx, &res); done || res.Err != nil {
				return res
			}
		}
	}
	// Reading stops when the claim is lost (readCtx's cause says so);
	// cleanup still uses ctx: the claim is held, and renewed, until the
	// end of this call.
	readCtx, claimLost := f.holdClaim(ctx)
	res.StartLine = max(f.opt.StartLine, f.entry.Line)
	if res.StartLine > 0 {
		f.log.Info("resuming file", zap.Int("after_line", res.StartLine))
	}

	f.t = newTracker(res.StartLine)
	f.ckLine, f.ckTime = res.StartLine, time.Now()
	comp := cloudfront.AutoCompression
	if strings.HasSuffix(f.ref.Key, ".gz") {
		comp = cloudfront.Gzip
	}
	rr := cloudfront.NewRecordReader(body, cloudfront.WithCompression(comp))
	stopErr := f.readLoop(readCtx, rr, &res)
	res.Bytes, res.RawBytes = rr.BytesRead(), rr.RawBytesRead()
	if stopErr != nil && readCtx.Err() != nil && !errors.Is(stopErr, ErrInterrupted) && !errors.Is(stopErr, ErrConflict) {
		if lost := claimLost(); lost != nil {
			stopErr = lost
		} else {
			stopErr = fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
		}
	}
	f.progress(rr, &res)

	// Wait for the records in flight, checkpointing as the watermark
	// moves, so that a crash now re-sends no more than at any other time.
	dctx, cancel := f.boundedContext(ctx, f.in.cfg.DrainTimeout, time.Second)
	defer cancel()
	for {
		all, err := f.t.waitChange(dctx)
		if err != nil {
			if stopErr == nil {
				stopErr = fmt.Errorf("%w: waiting for records in flight: %w", ErrInterrupted, err)
			}
			break
		}
		if err := f.checkpoint(dctx, false); err != nil && stopErr == nil {
			stopErr = err
		}
		if all {
			break
		}
	}
	line, below, failed := f.t.state()
	res.Records, res.EndLine = below, line
	if lost := claimLost(); lost != nil && stopErr == nil {
		stopErr = lost
	}
	if stopErr == nil && failed != nil {
		stopErr = fmt.Errorf("record not written: %w", failed)
	}
	switch {
	case stopErr == nil:
		res.EndLine = rr.Line()
		if m != nil {
			f.endClaim()
			wctx, cancel := f.boundedContext(ctx, 10*time.Second, 0)
			defer cancel()
			err := m.Finish(wctx, Entry{URL: f.url, ETag: f.ref.ETag, State: StateDone, Line: res.EndLine,
				Records: f.entry.Records + below, BadLines: res.BadLines, Owner: f.in.cfg.Owner})
			if err != nil {
				return f.failed(ctx, res, rr.Line(), fmt.Errorf("record done: %w", err))
			}
		}
		return res
	case errors.Is(stopErr, ErrClaimLost):
		// The file is another run's now: it resumes from the last offset
		// recorded; this run writes nothing more about it.
		f.log.Warn("stopped: the claim on the file was lost", zap.Int("confirmed_line", line), zap.Error(stopErr))
		res.Err = &FileError{URL: f.url, Line: rr.Line(), Err: stopErr}
		return res
	case errors.Is(stopErr, ErrInterrupted):
		wctx, cancel := f.boundedContext(ctx, 10*time.Second, 0)
		defer cancel()
		if err := f.checkpoint(wctx, true); err != nil {
			f.log.Warn("final checkpoint failed; a rerun resumes from the previous one", zap.Error(err))
		}
		if f.tracked {
			f.endClaim()
			// Give the file up at once, so a rerun need not wait for the
			// claim to go stale.
			if err := m.Release(wctx, f.url, f.ref.ETag, f.in.cfg.Owner); err != nil {
				f.log.Warn("releasing the claim failed; another run takes the file once the claim goes stale", zap.Error(err))
			}
		}
		res.Err = &FileError{URL: f.url, Line: rr.Line(), Err: stopErr}
		return res
	}
	return f.failed(ctx, res, rr.Line(), stopErr)
}

// readLoop puts the file's records until the end, an error, or a stop.
// It returns nil at the end of the file.
func (f *fileRun) readLoop(ctx context.Context, rr *cloudfront.RecordReader, res *FileResult) error {
	cfg := &f.in.cfg
	var takeRecs, takeBytes, badLogged int
	for n := 1; ; n++ {
		if err := f.t.waitRoom(ctx, cfg.CheckpointLines); err != nil {
			return err
		}
		if n%64 == 0 && !f.opt.StopReadingAt.IsZero() && time.Now().After(f.opt.StopReadingAt) {
			return fmt.Errorf("%w: reading deadline passed", ErrInterrupted)
		}
		if n%cfg.ProgressLines == 0 {
			f.progress(rr, res)
		}
		rec, err := rr.Next()
		var le *cloudfront.LineError
		switch {
		case errors.Is(err, io.EOF):
			// Pay what is owed so the next file starts within the rate; an
			// interruption now changes nothing for this file.
			_ = cfg.Limiter.Wait(ctx, takeRecs, takeBytes)
			return nil
		case errors.As(err, &le):
			if le.Line > res.StartLine {
				res.BadLines++
				if badLogged < 3 {
					badLogged++
					f.log.Warn("line not sent", zap.Int("line", le.Line), zap.String("reason", le.Reason), zap.Error(le.Err))
				}
			}
			continue
		case err != nil:
			return err
		}
		if rec.Line <= res.StartLine {
			res.ResumeSkipped++
			continue
		}
		// The limiter is paid in small batches, not per line: it takes a
		// lock, and a debt of 64 KiB is well within a second's burst.
		takeRecs++
		takeBytes += len(rec.Data) + len(rec.PartitionKey)
		if takeRecs >= 128 || takeBytes >= 64<<10 {
			if err := cfg.Limiter.Wait(ctx, takeRecs, takeBytes); err != nil {
				return err
			}
			takeRecs, takeBytes = 0, 0
		}
		seq := f.t.add(rec.Line)
		err = f.in.prod.PutRecord(ctx, producer.Record{PartitionKey: rec.PartitionKey, Data: rec.Data, Meta: ticket{t: f.t, seq: seq}})
		if errors.Is(err, producer.ErrInvalidRecord) {
			f.t.settle(seq, nil) // cannot be sent: counted, and the watermark may pass it
			res.BadLines++
			continue
		}
		if err != nil {
			f.t.abandon(seq)
			return err
		}
		f.sent++
		if rec.Malformed {
			res.Malformed++
		}
		if err := f.checkpoint(ctx, false); err != nil {
			return err
		}
	}
}

// claim begins the file in the manifest for this run. It reports true
// when the file is done already (res is then complete), and sets res.Err
// when the file could not be claimed: another run holds it (and
// FileOptions.WaitClaimed is off, or the wait ended) or the manifest
// failed.
//
// Waiting, it asks again every tenth of the claim duration. It takes the
// file over only after seeing the same ClaimVersion for a whole claim
// duration on its own monotonic clock: the owner, which stops working on
// the file when it cannot renew for two thirds of the duration, has
// stopped by then. No clocks of two hosts are compared.
func (f *fileRun) claim(ctx context.Context, res *FileResult) (done bool) {
	cfg := &f.in.cfg
	poll := min(max(cfg.ClaimDuration/10, 100*time.Millisecond), 5*time.Second)
	var seen, takeOver int64
	var since time.Time
	for {
		e, err := cfg.Manifest.Begin(ctx, f.url, f.ref.ETag, cfg.Owner, takeOver)
		var ce *ClaimedError
		switch {
		case err == nil && e.State == StateDone:
			res.Skipped, res.StartLine, res.EndLine = true, e.Line, e.Line
			res.OtherRun = res.ClaimedBy != ""
			return true
		case err == nil:
			f.entry, f.tracked = e, true
			res.TookOver = takeOver != 0
			if res.TookOver {
				f.log.Warn("took the file over from a run that stopped renewing its claim", zap.String("from", res.ClaimedBy),
					zap.Int("resume_after_line", e.Line))
			}
			return false
		case errors.As(err, &ce):
			res.ClaimedBy = ce.Entry.Owner
			if !f.opt.WaitClaimed {
				res.Err = &FileError{URL: f.url, Err: err}
				return false
			}
			switch {
			case ce.Entry.ClaimVersion != seen || since.IsZero():
				if seen == 0 {
					f.log.Info("file claimed by another run; waiting", zap.String("owner", ce.Entry.Owner))
				}
				seen, since, takeOver = ce.Entry.ClaimVersion, time.Now(), 0
			case time.Since(since) >= cfg.ClaimDuration:
				takeOver = seen
				continue
			}
		default:
			res.Err = &FileError{URL: f.url, Err: fmt.Errorf("manifest: %w", err)}
			return false
		}
		wait := poll
		if !f.opt.StopReadingAt.IsZero() {
			wait = min(wait, time.Until(f.opt.StopReadingAt))
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			res.Err = &FileError{URL: f.url, Err: fmt.Errorf("%w: waiting for another run's claim: %w", ErrClaimed, context.Cause(ctx))}
			return false
		case <-t.C:
		}
		if !f.opt.StopReadingAt.IsZero() && time.Now().After(f.opt.StopReadingAt) {
			res.Err = &FileError{URL: f.url, Err: fmt.Errorf("reading deadline passed while waiting: %w", err)}
			return false
		}
	}
}

// holdClaim renews this run's claim on the file every third of the claim
// duration until endClaim, and returns a context for the reading that ends
// when the claim is lost — another run holds it (a renewal was refused),
// or no renewal succeeded for two thirds of the duration, before any other
// run may take it — and a function returning that loss, or nil. Without a
// claim (no manifest) it returns ctx.
func (f *fileRun) holdClaim(ctx context.Context) (context.Context, func() error) {
	if !f.tracked {
		return ctx, func() error { return nil }
	}
	readCtx, cancel := context.WithCancelCause(ctx)
	var lost error // written by the renewer before cancel, read after readCtx is done
	lostCh := make(chan struct{})
	quit, done := make(chan struct{}), make(chan struct{})
	d := f.in.cfg.ClaimDuration
	go func() {
		defer close(done)
		t := time.NewTicker(d / 3)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			// Renew whatever happens to the caller's ctx: the claim must
			// outlive the drain and the last checkpoint.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), d/3)
			err := f.in.cfg.Manifest.Renew(rctx, f.url, f.ref.ETag, f.in.cfg.Owner)
			rcancel()
			switch {
			case err == nil:
				last = time.Now()
				continue
			case errors.Is(err, ErrConflict):
				lost = fmt.Errorf("%w: another run holds it now", ErrClaimLost)
			case time.Since(last) >= 2*d/3:
				lost = fmt.Errorf("%w: not renewed for %s (%v); stopping before another run may take it over", ErrClaimLost,
					time.Since(last).Round(time.Millisecond), err)
			default:
				f.log.Warn("renewing the claim failed; will retry", zap.Error(err))
				continue
			}
			close(lostCh)
			cancel(lost)
			return
		}
	}()
	f.endHold = func() {
		close(quit)
		<-done
		cancel(nil)
	}
	return readCtx, func() error {
		select {
		case <-lostCh:
			return lost
		default:
			return nil
		}
	}
}

// endClaim stops renewing the claim, before the last manifest write
// gives it up. Idempotent.
func (f *fileRun) endClaim() {
	if f.endHold != nil {
		f.endHold()
		f.endHold = nil
	}
}

// checkpoint records the watermark in the manifest when it moved by
// CheckpointLines records, or at all and CheckpointInterval has passed
// since the last checkpoint, or at all when force is set. A failed write
// is logged and tried again at the next occasion; only ErrConflict, which
// means another writer owns the entry, is returned.
func (f *fileRun) checkpoint(ctx context.Context, force bool) error {
	line, below, _ := f.t.state()
	if below == f.ckBelow && line == f.ckLine {
		return nil
	}
	now := time.Now()
	if !force && below-f.ckBelow < int64(f.in.cfg.CheckpointLines) && now.Sub(f.ckTime) < f.in.cfg.CheckpointInterval {
		return nil
	}
	f.ckTime = now
	if !f.tracked {
		f.ckLine, f.ckBelow = line, below
		return nil
	}
	if err := f.in.cfg.Manifest.Checkpoint(ctx, f.url, f.ref.ETag, f.in.cfg.Owner, line, f.entry.Records+below); err != nil {
		if errors.Is(err, ErrConflict) {
			return err
		}
		f.log.Warn("checkpoint failed; will retry", zap.Int("line", line), zap.Error(err))
		return nil
	}
	f.ckLine, f.ckBelow = line, below
	return nil
}

// failed records a permanent or retryable failure in the manifest (not a
// conflict: the entry is someone else's) and returns res with its error.
func (f *fileRun) failed(ctx context.Context, res FileResult, line int, err error) FileResult {
	res.Err = &FileError{URL: f.url, Line: line, Err: err}
	f.endClaim()
	if !f.tracked || errors.Is(err, ErrConflict) {
		return res
	}
	wctx, cancel := f.boundedContext(ctx, 10*time.Second, 0)
	defer cancel()
	below := int64(0)
	if f.t != nil {
		_, below, _ = f.t.state()
	}
	e := Entry{URL: f.url, ETag: f.ref.ETag, State: StateFailed, Line: max(res.EndLine, f.entry.Line),
		Records: f.entry.Records + below, BadLines: res.BadLines, Error: res.Err.Error(), Owner: f.in.cfg.Owner}
	if werr := f.in.cfg.Manifest.Finish(wctx, e); werr != nil {
		f.log.Warn("recording the failure in the manifest failed", zap.Error(werr))
	}
	return res
}

// progress reports how far reading got.
func (f *fileRun) progress(rr *cloudfront.RecordReader, res *FileResult) {
	if f.opt.Progress == nil {
		return
	}
	f.opt.Progress(FileProgress{URL: f.url, Line: rr.Line(), Records: f.sent, Bytes: rr.BytesRead(), RawBytes: rr.RawBytesRead()})
}

// boundedContext returns a context for cleanup after ctx may have ended:
// it lasts d, and when ctx has a deadline, never past that deadline less
// reserve (time kept for what comes after, e.g. the last manifest write).
func (f *fileRun) boundedContext(ctx context.Context, d, reserve time.Duration) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	if dl, ok := ctx.Deadline(); ok {
		c2, cancel2 := context.WithDeadline(c, dl.Add(-reserve))
		return c2, func() { cancel2(); cancel() }
	}
	return c, cancel
}
