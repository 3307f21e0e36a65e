package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
)

// RunOptions tunes IngestFiles and Backfill.
type RunOptions struct {
	// Concurrency is how many files are ingested at once. Default 4.
	Concurrency int
	// Progress, when set, is called from one goroutine every
	// ProgressInterval and once at the end (see TerminalProgress and
	// LogProgress).
	Progress func(Progress)
	// ProgressInterval; default 1s.
	ProgressInterval time.Duration
	// StartLine is FileOptions.StartLine for every file: the data lines up
	// to it are skipped. Default 0.
	StartLine int
	// SkipClaimed leaves files that another run holds (a claim in the
	// manifest) to that run: they are reported in Summary.NotWaited and
	// the run is not OK. By default the run ingests every other file
	// first, then waits for the claimed ones (FileOptions.WaitClaimed):
	// finished by the other run, released, or taken over once its claim
	// goes stale.
	SkipClaimed bool
}

// Progress is a snapshot of a run.
type Progress struct {
	Listing  bool // still listing: Files and BytesTotal may grow
	Files    int  // files to ingest found so far
	Excluded int  // objects listed but outside the time range
	Done     int  // files ingested to their end
	Failed   int  // files that stopped on an error
	Skipped  int  // done before this run, per the manifest (or by another run while this one waited)
	Active   int  // being ingested
	Waiting  int  // claimed by another run: left for the end, or being waited for
	// BytesRead is the compressed bytes read; BytesTotal the size of every
	// file found; BytesRemaining what is left of it to read (files skipped
	// or failed count as read).
	BytesRead, BytesTotal, BytesRemaining int64
	Records                               int64         // lines put
	Elapsed                               time.Duration // since the run began
	// Final marks the last snapshot of the run, taken once every file has
	// a result.
	Final bool
}

// Summary is the outcome of a run.
type Summary struct {
	Listed      int  // objects listed (Backfill)
	Excluded    int  // listed but outside the time range
	Done        int  // files ingested to their end
	Failed      int  // files that stopped on an error or an interruption
	Skipped     int  // files done before this run, per the manifest, or by another run while this one waited
	Interrupted bool // the context ended before every file was tried
	// Claims: Claimed files were held by another run when this one came to
	// them (ClaimedBy names one such run); of those, OtherRun were
	// finished by it (and counted in Skipped), TakenOver were resumed here
	// after its claim went unrenewed for a claim duration, and NotWaited
	// were left to it (RunOptions.SkipClaimed; the run is then not OK).
	Claimed, OtherRun, TakenOver, NotWaited int
	ClaimedBy                               string
	// Records: lines confirmed written; ResumeSkipped: lines skipped as
	// sent by an earlier run; BadLines: lines that could not be sent;
	// Malformed: lines sent for the consumer to dead-letter.
	Records, ResumeSkipped, BadLines, Malformed int64
	Bytes, RawBytes                             int64         // compressed read, decompressed lines
	Duration                                    time.Duration // of the whole run
	// Failures lists the failed files (at most 1,000; Failed counts all).
	Failures []FileResult
}

// OK reports whether every file was done or skipped and the run was not
// interrupted.
func (s Summary) OK() bool { return s.Failed == 0 && !s.Interrupted && s.NotWaited == 0 }

// Report writes the summary for people: counts, sizes, rates, and the
// first 20 failures with their errors.
func (s Summary) Report(w io.Writer) {
	secs := max(s.Duration.Seconds(), 1e-9)
	fmt.Fprintf(w, "files:  %d done, %d failed, %d skipped (done before)", s.Done, s.Failed, s.Skipped)
	if s.Listed > 0 {
		fmt.Fprintf(w, ", %d outside the time range (%d listed)", s.Excluded, s.Listed)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "lines:  %d sent, %d skipped on resume, %d not sendable, %d malformed (sent)\n",
		s.Records, s.ResumeSkipped, s.BadLines, s.Malformed)
	fmt.Fprintf(w, "bytes:  %s read, %s uncompressed\n", humanBytes(s.Bytes), humanBytes(s.RawBytes))
	fmt.Fprintf(w, "took:   %s (%s/s compressed, %.0f lines/s)\n", s.Duration.Round(time.Millisecond),
		humanBytes(int64(float64(s.Bytes)/secs)), float64(s.Records)/secs)
	if s.Claimed > 0 {
		fmt.Fprintf(w, "claims: %d files were being ingested by another run (%s): %d finished by it, %d taken over after its claim went stale",
			s.Claimed, s.ClaimedBy, s.OtherRun, s.TakenOver)
		if s.NotWaited > 0 {
			fmt.Fprintf(w, ", %d left to it (--skip-claimed)", s.NotWaited)
		}
		fmt.Fprintln(w)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: run again to resume")
	}
	for i, f := range s.Failures {
		if i == 20 {
			fmt.Fprintf(w, "  ... and %d more\n", s.Failed-20)
			break
		}
		kind := "permanent"
		if Retryable(f.Err) {
			kind = "retryable"
		}
		fmt.Fprintf(w, "failed (%s): %v\n", kind, f.Err)
	}
}

// IngestFiles ingests refs, Concurrency at a time, and blocks until each
// has a result or ctx ends. Failed files do not stop the others. When ctx
// ends, files in progress stop (their offsets are recorded) and the rest
// are not started; Summary.Interrupted says so. With a manifest it creates
// the table if missing first; the error reports that this failed.
func (in *Ingester) IngestFiles(ctx context.Context, refs []ObjectRef, opt RunOptions) (Summary, error) {
	if m := in.cfg.Manifest; m != nil {
		if err := m.EnsureTable(ctx); err != nil {
			return Summary{}, fmt.Errorf("ingest: %w", err)
		}
	}
	return in.run(ctx, opt, func(ctx context.Context, st *runState, emit func(ObjectRef) error) error {
		for _, r := range refs {
			st.found(r)
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// BackfillSpec selects the files of a backfill.
type BackfillSpec struct {
	Bucket string    // the bucket to list
	Prefix string    // key prefix; "" lists the whole bucket
	Range  TimeRange // by the hour in CloudFront file names
}

// Backfill lists the objects under spec.Prefix (page by page, while files
// are already being ingested), keeps those in spec.Range, and ingests
// them like IngestFiles. With a manifest it creates the table if missing
// first; files done before are skipped and partial ones resumed. It
// returns an error, with the summary so far, only when the table cannot be
// made ready or the listing fails (a missing bucket, access denied).
func (in *Ingester) Backfill(ctx context.Context, spec BackfillSpec, opt RunOptions) (Summary, error) {
	if m := in.cfg.Manifest; m != nil {
		if err := m.EnsureTable(ctx); err != nil {
			return Summary{}, fmt.Errorf("ingest: backfill: %w", err)
		}
	}
	return in.run(ctx, opt, func(ctx context.Context, st *runState, emit func(ObjectRef) error) error {
		pages := s3.NewListObjectsV2Paginator(in.s3, &s3.ListObjectsV2Input{Bucket: aws.String(spec.Bucket), Prefix: aws.String(spec.Prefix)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("ingest: list s3://%s/%s: %w", spec.Bucket, spec.Prefix, err)
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				if key == "" || key[len(key)-1] == '/' {
					continue // a "folder" placeholder
				}
				if !spec.Range.Contains(key) {
					st.excluded()
					continue
				}
				st.listedOne()
				ref := ObjectRef{Bucket: spec.Bucket, Key: key, ETag: trimETag(aws.ToString(o.ETag)), Size: aws.ToInt64(o.Size)}
				st.found(ref)
				if err := emit(ref); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// listAhead is how many listed files may wait for a worker.
const listAhead = 1000

// feedFunc produces the refs of a run through emit, which blocks until a
// worker takes the ref or ctx ends (then it returns ctx's error).
type feedFunc func(ctx context.Context, st *runState, emit func(ObjectRef) error) error

// run ingests what feed produces with opt.Concurrency workers, reporting
// progress, and returns the summary and feed's error (not ctx's).
func (in *Ingester) run(ctx context.Context, opt RunOptions, feed feedFunc) (Summary, error) {
	if opt.Concurrency < 1 {
		opt.Concurrency = 4
	}
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = time.Second
	}
	release := in.acquire(ctx) // one send loop across files
	defer release()
	st := &runState{began: time.Now(), listing: true}
	// The listing runs up to listAhead files ahead of the workers, so the
	// totals (and the ETA) are known early without holding a huge listing.
	refs := make(chan ObjectRef, listAhead)
	var feedErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(refs)
		feedErr = feed(ctx, st, func(r ObjectRef) error {
			select {
			case refs <- r:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		interrupted := feedErr != nil && ctx.Err() != nil
		st.listed(interrupted)
		if interrupted {
			feedErr = nil // reported by Summary.Interrupted
		}
	})
	work := func(refs <-chan ObjectRef, wait bool) {
		for range opt.Concurrency {
			wg.Go(func() {
				for ref := range refs {
					if ctx.Err() != nil {
						continue // interrupted: not started
					}
					in.runFile(ctx, st, ref, opt.StartLine, wait)
				}
			})
		}
	}
	work(refs, false)
	stopProgress := startProgress(opt, st)
	wg.Wait()

	// Files another run was ingesting come last: wait for each (it is
	// finished, released or taken over), or leave it to that run.
	if claimed := st.takeClaimed(); len(claimed) > 0 && ctx.Err() == nil {
		if opt.SkipClaimed {
			st.leave(len(claimed))
		} else {
			in.log.Info("waiting for files another run is ingesting", zap.Int("files", len(claimed)), zap.String("owner", st.claimedBy()))
			later := make(chan ObjectRef, len(claimed))
			for _, r := range claimed {
				later <- r
			}
			close(later)
			work(later, true)
			wg.Wait()
		}
	}
	stopProgress()
	sum := st.summary()
	sum.Interrupted = ctx.Err() != nil && (sum.Done+sum.Failed+sum.Skipped+sum.NotWaited < st.files || st.stoppedListing)
	return sum, feedErr
}

// runFile ingests one file of a run and accounts for it. Without wait, a
// file another run holds is put aside for the end of the run.
func (in *Ingester) runFile(ctx context.Context, st *runState, ref ObjectRef, startLine int, wait bool) {
	st.start()
	var lastBytes, lastRecords int64
	res, err := in.Ingest(ctx, ref, FileOptions{StartLine: startLine, WaitClaimed: wait, Progress: func(p FileProgress) {
		st.add(p.Bytes-lastBytes, p.Records-lastRecords)
		lastBytes, lastRecords = p.Bytes, p.Records
	}})
	if !wait && (errors.Is(err, ErrClaimed) || errors.Is(err, ErrClaimLost)) && ctx.Err() == nil {
		in.log.Info("file claimed by another run; left for the end of this run", zap.String("file", ref.URL()),
			zap.String("owner", res.ClaimedBy), zap.Error(err))
		st.claimed(ref, res, lastBytes)
		return
	}
	switch {
	case err == nil && res.Skipped:
		in.log.Debug("file skipped: done before", zap.String("file", ref.URL()))
	case err == nil:
		in.log.Debug("file done", zap.String("file", ref.URL()), zap.Int64("records", res.Records), zap.Duration("took", res.Duration))
	case errors.Is(err, ErrInterrupted):
		in.log.Warn("file interrupted", zap.String("file", ref.URL()), zap.Int("resume_after_line", res.EndLine), zap.Error(err))
	default:
		in.log.Error("file failed", zap.String("file", ref.URL()), zap.Int("resume_after_line", res.EndLine),
			zap.Bool("retryable", Retryable(err)), zap.Error(err))
	}
	st.finish(res, lastBytes, wait)
}

// runState accounts for a run. Its methods are safe for concurrent use.
type runState struct {
	began time.Time

	mu             sync.Mutex // guards everything below
	listing        bool
	held           []ObjectRef // claimed by another run, for the end of the run
	waiting        int
	stoppedListing bool // the feed ended early (ctx)
	nListed        int
	files          int
	nExcluded      int
	active         int
	bytesRead      int64 // by every file, as reported
	bytesTotal     int64
	accounted      int64 // sizes of finished files
	readFinished   int64 // bytes read by finished files
	records        int64
	sum            Summary
}

func (s *runState) found(r ObjectRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files++
	s.bytesTotal += r.Size
}

func (s *runState) excluded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nListed++
	s.nExcluded++
}

func (s *runState) listedOne() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nListed++
}

// listed marks the end of the feed; early when interrupted.
func (s *runState) listed(interrupted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listing = false
	s.stoppedListing = interrupted
}

func (s *runState) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active++
}

func (s *runState) add(bytes, records int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytesRead += bytes
	s.records += records
}

// claimed puts a file another run holds aside; read is what its progress
// reported (a file whose claim was lost midway read some).
func (s *runState) claimed(ref ObjectRef, r FileResult, read int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.waiting++
	s.held = append(s.held, ref)
	s.bytesRead -= read // it is read again, by whoever finishes it
	s.sum.Claimed++
	if s.sum.ClaimedBy == "" {
		s.sum.ClaimedBy = r.ClaimedBy
	}
}

// takeClaimed returns the files put aside.
func (s *runState) takeClaimed() []ObjectRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held
	s.held = nil
	return h
}

func (s *runState) claimedBy() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sum.ClaimedBy
}

// leave accounts for n claimed files left to their owner.
func (s *runState) leave(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting -= n
	s.sum.NotWaited += n
}

// finish accounts for a file's result; read is what its progress
// reported; waited says it was one of the files put aside.
func (s *runState) finish(r FileResult, read int64, waited bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if waited {
		s.waiting-- // one of the files put aside
	}
	if r.OtherRun || (waited && r.Skipped) {
		s.sum.OtherRun++
	}
	if r.TookOver {
		s.sum.TakenOver++
	}
	s.accounted += max(r.Object.Size, r.Bytes)
	s.readFinished += read
	sum := &s.sum
	switch {
	case r.Err != nil:
		sum.Failed++
		if len(sum.Failures) < 1000 {
			sum.Failures = append(sum.Failures, r)
		}
	case r.Skipped:
		sum.Skipped++
	default:
		sum.Done++
	}
	sum.Records += r.Records
	sum.ResumeSkipped += r.ResumeSkipped
	sum.BadLines += r.BadLines
	sum.Malformed += r.Malformed
	sum.Bytes += r.Bytes
	sum.RawBytes += r.RawBytes
}

func (s *runState) snapshot() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	remaining := s.bytesTotal - s.accounted - (s.bytesRead - s.readFinished)
	return Progress{
		Listing: s.listing, Files: s.files, Excluded: s.nExcluded, Done: s.sum.Done, Failed: s.sum.Failed,
		Skipped: s.sum.Skipped, Active: s.active, Waiting: s.waiting, BytesRead: s.bytesRead, BytesTotal: s.bytesTotal,
		BytesRemaining: max(remaining, 0), Records: s.records, Elapsed: time.Since(s.began),
	}
}

func (s *runState) summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.sum
	sum.Listed, sum.Excluded = s.nListed, s.nExcluded
	sum.Duration = time.Since(s.began)
	return sum
}

// startProgress calls opt.Progress every interval from its own goroutine
// until the returned func is called, which makes a last call and waits.
func startProgress(opt RunOptions, st *runState) (stop func()) {
	if opt.Progress == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(opt.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				opt.Progress(st.snapshot())
			case <-quit:
				p := st.snapshot()
				p.Final = true
				opt.Progress(p)
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}
