package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/ingest/ingesttest"
)

func TestBackfill(t *testing.T) {
	m := ingesttest.NewManifest()
	f := newFixture(t, ingest.Config{Aggregate: true, Manifest: m})
	f.s3.PageSize = 5 // several pages
	// 12 hourly files 2024-05-01 06h..17h, of which --from 08 --to 16
	// selects 8; one of those is corrupt. Plus a file of another prefix,
	// a non-log object and a folder placeholder.
	var inRange []uint64
	for h := 6; h < 18; h++ {
		seed := uint64(100 + h)
		key := fmt.Sprintf("cf/E1ABC.2024-05-01-%02d.%x.gz", h, seed)
		data := ingesttest.Gzip(ingesttest.LogFile(hour, 200+h, seed))
		if h == 12 {
			data = data[:len(data)/2] // corrupt
		} else if h >= 8 && h < 16 {
			inRange = append(inRange, seed)
		}
		f.s3.Put("logs", key, data)
	}
	f.s3.Put("logs", "other/E1ABC.2024-05-01-10.x.gz", ingesttest.Gzip(ingesttest.LogFile(hour, 10, 99)))
	f.s3.Put("logs", "cf/README.txt", []byte("not a log"))
	f.s3.Put("logs", "cf/2024/", nil)

	spec := ingest.BackfillSpec{Bucket: "logs", Prefix: "cf/", Range: ingest.TimeRange{
		From: time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC), To: time.Date(2024, 5, 1, 16, 0, 0, 0, time.UTC)}}
	var mu sync.Mutex
	var snaps []ingest.Progress
	opt := ingest.RunOptions{Concurrency: 3, ProgressInterval: 5 * time.Millisecond, Progress: func(p ingest.Progress) {
		mu.Lock()
		snaps = append(snaps, p)
		mu.Unlock()
	}}
	sum, err := f.in.Backfill(ctxT(t), spec, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Listed != 13 || sum.Excluded != 5 || sum.Done != 7 || sum.Failed != 1 || sum.Skipped != 0 || sum.OK() {
		t.Fatalf("summary %+v, want 13 listed, 5 excluded, 7 done, 1 failed", sum)
	}
	if len(sum.Failures) != 1 || !errors.Is(sum.Failures[0].Err, cloudfront.ErrCorrupt) || !strings.Contains(sum.Failures[0].Err.Error(), "E1ABC.2024-05-01-12") {
		t.Fatalf("failures %v, want the corrupt file", sum.Failures)
	}
	ids := f.ids(t)
	var lines int64
	for _, seed := range inRange {
		n := 200 + int(seed-100)
		want(t, ids, seed, 0, n, 1)
		lines += int64(n)
	}
	if sum.Records < lines || int64(len(ids)) != sum.Records {
		t.Fatalf("summary says %d records, %d distinct written, want %d plus the corrupt file's", sum.Records, len(ids), lines)
	}
	last := snaps[len(snaps)-1]
	if last.Listing || last.Files != 8 || last.Done != 7 || last.Failed != 1 || last.Active != 0 || last.BytesRemaining != 0 || last.Records != sum.Records {
		t.Fatalf("last progress %+v", last)
	}
	var report bytes.Buffer
	sum.Report(&report)
	for _, w := range []string{"7 done, 1 failed", "5 outside the time range (13 listed)", "failed (permanent)"} {
		if !strings.Contains(report.String(), w) {
			t.Fatalf("report lacks %q:\n%s", w, report.String())
		}
	}

	// A rerun skips the done files, and resumes (and fails again) the
	// corrupt one without sending anything twice.
	sum2, err := f.in.Backfill(ctxT(t), spec, ingest.RunOptions{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Skipped != 7 || sum2.Failed != 1 || sum2.Done != 0 || sum2.Records != 0 {
		t.Fatalf("rerun summary %+v, want 7 skipped, 1 failed, nothing sent", sum2)
	}
	if len(f.ids(t)) != len(ids) {
		t.Fatal("the rerun sent lines again")
	}
}

func TestBackfillListingFails(t *testing.T) {
	f := newFixture(t, ingest.Config{Manifest: ingesttest.NewManifest()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := f.in.Backfill(ctx, ingest.BackfillSpec{Bucket: "logs"}, ingest.RunOptions{})
	if err != nil || !sum.Interrupted || sum.OK() {
		t.Fatalf("cancelled backfill: %+v, %v; want an interrupted summary", sum, err)
	}
}

func TestIngestFilesIsolatesFailures(t *testing.T) {
	f := newFixture(t, ingest.Config{Aggregate: true})
	good := f.put("a/E1.2024-05-01-10.good.gz", 500, 20)
	missing := ingest.ObjectRef{Bucket: "logs", Key: "a/E1.2024-05-01-10.missing.gz"}
	corrupt := ingest.ObjectRef{Bucket: "logs", Key: "a/E1.2024-05-01-10.bad.gz"}
	f.s3.Put("logs", corrupt.Key, []byte("definitely not gzip\n"))
	sum, err := f.in.IngestFiles(ctxT(t), []ingest.ObjectRef{missing, good, corrupt}, ingest.RunOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 1 || sum.Failed != 2 || sum.Records != 500 {
		t.Fatalf("summary %+v, want 1 done (500 lines), 2 failed", sum)
	}
	for _, fr := range sum.Failures {
		if ingest.Retryable(fr.Err) {
			t.Fatalf("%v reported retryable", fr.Err)
		}
	}
	want(t, f.ids(t), 20, 0, 500, 1)
}
