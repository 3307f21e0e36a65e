package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func entry(i int) Entry {
	return Entry{PartitionKey: fmt.Sprintf("asset-%d", i%7), Data: []byte(fmt.Sprintf(`{"event_id":"e-%d"}`, i))}
}

func mustOpen(t *testing.T, dir string, opts Options) (*Dir, []Record) {
	t.Helper()
	d, recs, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d, recs
}

// crash drops d as a SIGKILL would: the lock and files are released,
// nothing more is written (Done marks not yet synced are lost).
func crash(d *Dir) {
	d.closeFiles()
	d.lock.Close()
}

func ids(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func appendN(t *testing.T, d *Dir, from, n int) []uint64 {
	t.Helper()
	es := make([]Entry, n)
	for i := range es {
		es[i] = entry(from + i)
	}
	first, err := d.Append(es)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func TestCrashKeepsExactlyTheRecordsNotDone(t *testing.T) {
	dir := t.TempDir()
	d, recs := mustOpen(t, dir, Options{})
	if len(recs) != 0 {
		t.Fatalf("new spool has %d records", len(recs))
	}
	all := appendN(t, d, 0, 100)
	for _, id := range all[:60] {
		d.Done(id)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Done(all[60]) // marked, not synced: lost with the crash
	if s := d.Stats(); s.Pending != 39 || s.Unsynced != 1 || s.Appended != 100 {
		t.Fatalf("stats %+v", s)
	}
	crash(d)

	d, recs = mustOpen(t, dir, Options{})
	if got, want := ids(recs), all[60:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the crash: %v, want %v", got, want)
	}
	if r := recs[0]; r.PartitionKey != entry(60).PartitionKey || string(r.Data) != string(entry(60).Data) {
		t.Fatalf("record read back as %+v", r)
	}
	more := appendN(t, d, 100, 5)
	if more[0] <= all[99] {
		t.Fatalf("ids restart at %d after %d", more[0], all[99])
	}
	for _, id := range append(all[60:], more...) {
		d.Done(id)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, recs = mustOpen(t, dir, Options{})
	defer d.Close()
	if len(recs) != 0 {
		t.Fatalf("after a clean close with everything done: %v", ids(recs))
	}
	if s := d.Stats(); s.Segments != 1 || s.Bytes != 0 {
		t.Fatalf("finished segments not deleted: %+v", s)
	}
}

func TestTornTails(t *testing.T) {
	dir := t.TempDir()
	d, _ := mustOpen(t, dir, Options{})
	all := appendN(t, d, 0, 10)
	d.Done(all[0])
	d.Done(all[1])
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	seg := d.segPath(d.segs[len(d.segs)-1].num)
	ack := d.ackPath(d.segs[len(d.segs)-1].num)
	crash(d)
	// A record half written and a mark half written when the power went.
	frame := appendFrame(nil, 999, entry(999))
	appendBytes(t, seg, frame[:len(frame)-3])
	appendBytes(t, ack, appendAck(nil, all[2])[:7])

	d, recs := mustOpen(t, dir, Options{})
	if got, want := ids(recs), all[2:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("after torn tails: %v, want %v", got, want)
	}
	// Marks written after the cut tail are read next time.
	d.Done(all[2])
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	crash(d)
	d, recs = mustOpen(t, dir, Options{})
	defer d.Close()
	if got, want := ids(recs), all[3:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("mark after a torn mark lost: %v, want %v", got, want)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestSegmentsAreDeletedAndCompacted fills several small segments,
// finishes all but one record of the oldest, and checks that finished
// segments go away and the straggler is copied forward (keeping its id)
// so its segment goes too, with nothing lost or doubled across a crash.
func TestSegmentsAreDeletedAndCompacted(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1024}
	d, _ := mustOpen(t, dir, opts)
	var all []uint64
	for i := range 40 {
		all = append(all, appendN(t, d, i*5, 5)...)
	}
	if s := d.Stats(); s.Segments < 5 {
		t.Fatalf("only %d segments for 40 appends of 5 records", s.Segments)
	}
	straggler := all[3]
	for _, id := range all {
		if id != straggler {
			d.Done(id)
		}
	}
	for range 3 {
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	s := d.Stats()
	if s.Segments != 1 || s.Compacted != 1 || s.Pending != 1 {
		t.Fatalf("after finishing all but one: %+v", s)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 1 {
		t.Fatalf("segment files left: %v", files)
	}
	crash(d)
	d, recs := mustOpen(t, dir, opts)
	defer d.Close()
	if got := ids(recs); !reflect.DeepEqual(got, []uint64{straggler}) || string(recs[0].Data) != string(entry(3).Data) {
		t.Fatalf("after compaction and a crash: %v", got)
	}
}

// TestInterruptedCompaction builds what a crash between a compaction's
// copy and its delete leaves: one record in two segments. It is replayed
// once; marked done in either file, not at all.
func TestInterruptedCompaction(t *testing.T) {
	for _, markIn := range []string{"none", "old", "new"} {
		t.Run(markIn, func(t *testing.T) {
			dir := t.TempDir()
			d, _ := mustOpen(t, dir, Options{})
			d.closeFiles()
			d.lock.Close()
			old, cp := filepath.Join(dir, "0000000000000010.seg"), filepath.Join(dir, "0000000000000011.seg")
			appendBytes(t, old, appendFrame(appendFrame(nil, 7, entry(7)), 8, entry(8)))
			appendBytes(t, cp, appendFrame(nil, 7, entry(7)))
			appendBytes(t, filepath.Join(dir, "0000000000000010.ack"), appendAck(nil, 8))
			switch markIn {
			case "old":
				appendBytes(t, filepath.Join(dir, "0000000000000010.ack"), appendAck(nil, 7))
			case "new":
				appendBytes(t, filepath.Join(dir, "0000000000000011.ack"), appendAck(nil, 7))
			}
			d, recs := mustOpen(t, dir, Options{})
			want := []uint64{7}
			if markIn != "none" {
				want = []uint64{}
			}
			if got := ids(recs); !reflect.DeepEqual(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			d.Done(7)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(files) != 0 {
				t.Fatalf("files left after everything is done: %v", files)
			}
		})
	}
}

func TestOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	d, _ := mustOpen(t, dir, Options{})
	defer d.Close()
	if _, _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use", err)
	}
}

// TestConcurrentAppendDone appends from many goroutines (group commit)
// while Run syncs marks and segments roll and compact, then crashes: the
// records replayed are exactly those never marked done.
func TestConcurrentAppendDone(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4096, SyncInterval: time.Millisecond}
	d, _ := mustOpen(t, dir, opts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()

	var mu sync.Mutex
	kept := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				got := appendN(t, d, g*1000+i*3, 3)
				for j, id := range got {
					if (i+j)%10 == 0 {
						mu.Lock()
						kept[id] = true
						mu.Unlock()
						continue
					}
					d.Done(id)
				}
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Syncs >= s.Appended/3 {
		t.Logf("no group commit happened: %d fsyncs for %d appends", s.Syncs, s.Appended/3)
	}
	crash(d)
	d, recs := mustOpen(t, dir, opts)
	defer d.Close()
	var want []uint64
	for id := range kept {
		want = append(want, id)
	}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if got := ids(recs); !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed %d records, want the %d never done", len(got), len(want))
	}
}
