// Package spool is the collector's durable buffer on local disk: every
// event accepted is appended to a segment file and fsynced before the
// client is answered, and marked done once Kinesis has confirmed it. A
// process that dies (SIGKILL, OOM, power) finds on its next start, with
// Open, exactly the events that were accepted and not confirmed, and
// sends them again.
//
// # Layout
//
// A spool is a directory holding a LOCK file (flock: one process at a
// time) and pairs of files per segment: NNNNNNNNNNNNNNNN.seg, the records
// appended (length, CRC-32C, id, partition key, data), and
// NNNNNNNNNNNNNNNN.ack, the ids of its records that are done (id, CRC).
// New records go to the active segment; once it reaches
// Options.SegmentBytes it is sealed and a new one begins. A sealed
// segment whose records are all done is deleted with its marks (that is
// the truncation); a sealed segment that is mostly done has its few live
// records copied forward into the active segment, keeping their ids, and
// is then deleted (compaction), so one slow record cannot pin a whole
// segment's bytes. Reading tolerates a torn tail (a crash mid-write): a
// record that fails its CRC ends its segment, and the records after it
// were never acknowledged because the fsync had not returned.
//
// # What survives a crash
//
// Append returns after the fsync: an event answered 202 is on disk.
// Done is recorded in memory at once and made durable by the next Sync
// (Run calls it every Options.SyncInterval). A crash after Kinesis
// confirmed a record and before its mark was synced sends the record
// again on the next start: that window, at most SyncInterval plus one
// fsync, is the only source of duplicates the spool adds. Consumers
// deduplicate by event_id, as every leasehold sink does.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultSegmentBytes = 16 << 20
	DefaultSyncInterval = 20 * time.Millisecond
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("spool: closed")

// ErrBroken wraps the error that made the spool unusable (an fsync that
// failed: after that the disk's state is unknown). Every later Append
// fails with it; restart the process to recover what is on disk.
var ErrBroken = errors.New("spool: broken")

// Options tune a spool. Zero values mean the defaults.
type Options struct {
	// SegmentBytes is the size at which the active segment is sealed and
	// a new one begins. Default 16 MiB.
	SegmentBytes int64
	// SyncInterval is how often Run makes Done marks durable and deletes
	// or compacts finished segments. Default 20 ms.
	SyncInterval time.Duration
}

// Entry is what Append stores for one event.
type Entry struct {
	PartitionKey string
	Data         []byte
}

// Record is a stored entry with its id (unique within the spool, rising
// in Append order).
type Record struct {
	ID uint64
	Entry
}

// Stats is a snapshot of the spool.
type Stats struct {
	Pending  int    // records stored and not marked done
	Unsynced int    // done marks not yet durable
	Segments int    // segment files on disk
	Bytes    int64  // bytes of segment files on disk
	Appended uint64 // records appended since Open
	Done     uint64 // records marked done since Open
	Replayed int    // records pending at Open
	Syncs    uint64 // fsyncs of appends
	// SyncSeconds is the total time appends spent writing and syncing.
	SyncSeconds float64
	Compacted   uint64 // records copied forward by compaction
}

// segment is one .seg/.ack pair. Guarded by Dir.mu, except the files,
// which only the writer (see Dir.writing) touches.
type segment struct {
	num     uint64
	f       *os.File // data file, open for the active segment only
	ack     *os.File // marks file, opened when first needed
	size    int64
	records int  // records in the file
	live    int  // of them, not done
	sealed  bool // no more appends
	acks    []uint64
}

func (s *segment) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.ack != nil {
		s.ack.Close()
		s.ack = nil
	}
}

// batch is the records appended while the writer was busy: written and
// synced together (group commit).
type batch struct {
	buf    []byte
	lo, hi uint64 // ids [lo, hi)
	done   bool
	err    error
}

// Dir is an open spool. Its methods are safe for concurrent use.
type Dir struct {
	path string
	opts Options
	lock *os.File

	mu   sync.Mutex
	cond *sync.Cond // signals when a batch is written or the writer is free
	// Everything below is guarded by mu.
	writing bool // someone holds the writer role: appends, rolls, syncs, compaction
	cur     *batch
	nextID  uint64
	nextSeg uint64
	segs    []*segment // by num; the last one is active
	where   map[uint64]*segment
	err     error // sticky: ErrBroken
	closed  bool
	stats   Stats
}

// Open opens the spool in dir (created if missing) and returns the
// records that were stored and not done, by id. It takes the directory's
// lock: a second process opening the same spool gets an error.
func Open(dir string, opts Options) (*Dir, []Record, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("spool: %s is in use by another process: %w", dir, err)
	}
	d := &Dir{path: dir, opts: opts, lock: lock, where: map[uint64]*segment{}, nextID: 1}
	d.cond = sync.NewCond(&d.mu)
	pending, err := d.load()
	if err == nil {
		err = d.roll()
	}
	if err == nil {
		err = d.Sync() // persist marks found missing, drop finished segments
	}
	if err != nil {
		d.closeFiles()
		lock.Close()
		return nil, nil, err
	}
	d.cur = &batch{lo: d.nextID}
	d.stats.Replayed = len(pending)
	return d, pending, nil
}

// load reads every segment and its marks, and sets the in-memory state:
// which ids are live in which segment.
func (d *Dir) load() ([]Record, error) {
	nums, err := d.segmentNums()
	if err != nil {
		return nil, err
	}
	type loaded struct {
		seg  *segment
		ids  []uint64
		acks map[uint64]bool
	}
	var all []loaded
	done := map[uint64]bool{}
	recs := map[uint64]Record{}
	for _, num := range nums {
		seg := &segment{num: num, sealed: true}
		ids, size, err := readSegment(d.segPath(num), func(r Record) {
			if _, ok := recs[r.ID]; !ok {
				recs[r.ID] = r
			}
		})
		if err != nil {
			return nil, err
		}
		acks, err := readAcks(d.ackPath(num))
		if err != nil {
			return nil, err
		}
		for id := range acks {
			done[id] = true
		}
		seg.size, seg.records = size, len(ids)
		all = append(all, loaded{seg: seg, ids: ids, acks: acks})
		d.segs = append(d.segs, seg)
		d.nextSeg = num + 1
	}
	for _, l := range all {
		for _, id := range l.ids {
			d.nextID = max(d.nextID, id+1)
			switch {
			case done[id]:
				if !l.acks[id] {
					// Done, but marked in another segment's file only: mark
					// this copy too, in case that segment goes first.
					l.seg.acks = append(l.seg.acks, id)
				}
			default:
				if prev := d.where[id]; prev != nil {
					// A copy left by a compaction the crash interrupted: the
					// newer copy carries the record, the older one is done.
					prev.live--
					prev.acks = append(prev.acks, id)
				}
				d.where[id] = l.seg
				l.seg.live++
			}
		}
	}
	pending := make([]Record, 0, len(d.where))
	for id := range d.where {
		pending = append(pending, recs[id])
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].ID < pending[j].ID })
	return pending, nil
}

// segmentNums lists the segment numbers on disk, in order.
func (d *Dir) segmentNums() ([]uint64, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

func (d *Dir) segPath(num uint64) string { return filepath.Join(d.path, fmt.Sprintf("%016x.seg", num)) }
func (d *Dir) ackPath(num uint64) string { return filepath.Join(d.path, fmt.Sprintf("%016x.ack", num)) }

// Append stores entries and returns the id of the first (the others
// follow in order) once they are written and fsynced. Concurrent calls
// share one write and one fsync. An error means none of entries is
// stored.
func (d *Dir) Append(entries []Entry) (uint64, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, ErrClosed
	}
	if d.err != nil {
		return 0, d.err
	}
	b := d.cur
	first := d.nextID
	for _, e := range entries {
		b.buf = appendFrame(b.buf, d.nextID, e)
		d.nextID++
	}
	b.hi = d.nextID
	for !b.done {
		if d.writing {
			d.cond.Wait()
			continue
		}
		d.writeBatchLocked()
	}
	return first, b.err
}

// writeBatchLocked takes the writer role, writes and syncs the current
// batch to the active segment, and settles it. It returns with mu held.
func (d *Dir) writeBatchLocked() {
	d.writing = true
	b := d.cur
	d.cur = &batch{lo: d.nextID}
	seg := d.segs[len(d.segs)-1]
	d.mu.Unlock()

	began := time.Now()
	err := writeSync(seg, b.buf)
	took := time.Since(began)

	d.mu.Lock()
	d.stats.Syncs++
	d.stats.SyncSeconds += took.Seconds()
	if err != nil {
		b.err = fmt.Errorf("spool: append: %w", err)
		if errors.Is(err, ErrBroken) {
			d.err = err
		}
	} else {
		seg.size += int64(len(b.buf))
		for id := b.lo; id < b.hi; id++ {
			d.where[id] = seg
		}
		n := int(b.hi - b.lo)
		seg.records += n
		seg.live += n
		d.stats.Appended += uint64(n)
		if seg.size >= d.opts.SegmentBytes {
			if rerr := d.rollLocked(); rerr != nil {
				d.err = fmt.Errorf("%w: %w", ErrBroken, rerr)
			}
		}
	}
	b.done = true
	d.writing = false
	d.cond.Broadcast()
}

// writeSync appends buf to seg's file and fsyncs it. A failed write is
// undone (the file is truncated back), so the next append does not land
// after a torn record; when that, or the fsync, fails the error wraps
// ErrBroken.
func writeSync(seg *segment, buf []byte) error {
	if _, err := seg.f.Write(buf); err != nil {
		if terr := seg.f.Truncate(seg.size); terr != nil {
			return fmt.Errorf("%w: write: %w; truncate back: %w", ErrBroken, err, terr)
		}
		if _, serr := seg.f.Seek(seg.size, io.SeekStart); serr != nil {
			return fmt.Errorf("%w: write: %w; seek back: %w", ErrBroken, err, serr)
		}
		return err
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrBroken, seg.f.Name(), err)
	}
	return nil
}

// roll seals the active segment, if any, and starts a new one. Called
// with the writer role or before the spool is shared.
func (d *Dir) roll() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rollLocked()
}

// rollLocked is roll with mu held (and the writer role, or no other user).
// It does file I/O under mu: rolls are rare.
func (d *Dir) rollLocked() error {
	num := d.nextSeg
	f, err := os.OpenFile(d.segPath(num), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if err := syncDir(d.path); err != nil {
		f.Close()
		return err
	}
	if n := len(d.segs); n > 0 {
		old := d.segs[n-1]
		old.sealed = true
		if old.f != nil {
			old.f.Close()
			old.f = nil
		}
	}
	d.nextSeg++
	d.segs = append(d.segs, &segment{num: num, f: f})
	return nil
}

// Done marks the record id done: Kinesis has it, or it is to be
// forgotten. It does not block on I/O; the mark is durable after the next
// Sync. Unknown and already done ids are ignored.
func (d *Dir) Done(id uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seg := d.where[id]
	if seg == nil {
		return
	}
	delete(d.where, id)
	seg.live--
	seg.acks = append(seg.acks, id)
	d.stats.Done++
}

// Run makes Done marks durable and deletes or compacts finished segments
// every Options.SyncInterval until ctx ends, then does it once more. It
// returns the error that broke the spool, or nil.
func (d *Dir) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return d.Sync()
		case <-t.C:
		}
		if err := d.Sync(); err != nil {
			return err
		}
	}
}

// Sync writes and fsyncs the pending Done marks, deletes sealed segments
// whose records are all done, and compacts one mostly done segment. It
// returns an error wrapping ErrBroken when a file could not be written.
func (d *Dir) Sync() error {
	d.mu.Lock()
	for d.writing {
		d.cond.Wait()
	}
	if d.err != nil {
		d.mu.Unlock()
		return d.err
	}
	d.writing = true
	var todo []work
	for _, s := range d.segs {
		drop := s.sealed && s.live == 0
		if len(s.acks) == 0 && !drop {
			continue
		}
		todo = append(todo, work{seg: s, acks: s.acks, drop: drop})
		s.acks = nil
	}
	victim := d.compactionVictimLocked()
	d.mu.Unlock()

	err := d.applyMarks(todo)
	if err == nil && victim != nil {
		err = d.compact(victim)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	kept := d.segs[:0]
	for _, s := range d.segs {
		if s.records < 0 {
			continue // deleted by applyMarks or compact
		}
		kept = append(kept, s)
	}
	clear(d.segs[len(kept):])
	d.segs = kept
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%w: %w", ErrBroken, err)
	}
	d.writing = false
	d.cond.Broadcast()
	return d.err
}

// applyMarks writes each segment's new marks, or deletes it when dropped.
// It holds the writer role.
func (d *Dir) applyMarks(todo []work) error {
	removed := false
	for _, w := range todo {
		if w.drop {
			if err := d.remove(w.seg); err != nil {
				return err
			}
			removed = true
			continue
		}
		if err := d.writeAcks(w.seg, w.acks); err != nil {
			return err
		}
	}
	if removed {
		return syncDir(d.path)
	}
	return nil
}

// work is a segment's share of a Sync: marks to write, or the segment to
// delete.
type work struct {
	seg  *segment
	acks []uint64
	drop bool
}

// writeAcks appends ids to seg's marks file and fsyncs it. It holds the
// writer role.
func (d *Dir) writeAcks(seg *segment, ids []uint64) error {
	if seg.ack == nil {
		f, err := os.OpenFile(d.ackPath(seg.num), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: open marks: %w", err)
		}
		seg.ack = f
		if err := syncDir(d.path); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, len(ids)*ackSize)
	for _, id := range ids {
		buf = appendAck(buf, id)
	}
	if _, err := seg.ack.Write(buf); err != nil {
		return fmt.Errorf("spool: write marks: %w", err)
	}
	if err := seg.ack.Sync(); err != nil {
		return fmt.Errorf("spool: fsync marks: %w", err)
	}
	return nil
}

// remove deletes seg's files and marks it gone (records < 0). It holds
// the writer role.
func (d *Dir) remove(seg *segment) error {
	d.mu.Lock()
	seg.close()
	seg.records = -1
	d.mu.Unlock()
	if err := os.Remove(d.segPath(seg.num)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove segment: %w", err)
	}
	if err := os.Remove(d.ackPath(seg.num)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove marks: %w", err)
	}
	return nil
}

// compactionVictimLocked picks the oldest sealed segment that is at least
// three quarters done while older than the segment before the active
// one: its live records are worth copying forward.
func (d *Dir) compactionVictimLocked() *segment {
	if len(d.segs) < 3 {
		return nil
	}
	for _, s := range d.segs[:len(d.segs)-2] {
		if s.sealed && s.live > 0 && s.live*4 <= s.records {
			return s
		}
	}
	return nil
}

// compact copies the live records of seg into the active segment, keeping
// their ids, then deletes seg. It holds the writer role.
func (d *Dir) compact(seg *segment) error {
	d.mu.Lock()
	live := map[uint64]bool{}
	for id, s := range d.where {
		if s == seg {
			live[id] = true
		}
	}
	active := d.segs[len(d.segs)-1]
	d.mu.Unlock()

	var buf []byte
	var moved []uint64
	if _, _, err := readSegment(d.segPath(seg.num), func(r Record) {
		if live[r.ID] {
			buf = appendFrame(buf, r.ID, r.Entry)
			moved = append(moved, r.ID)
			delete(live, r.ID) // a file holds one copy, but be safe
		}
	}); err != nil {
		return err
	}
	if err := writeSync(active, buf); err != nil {
		return err
	}

	d.mu.Lock()
	active.size += int64(len(buf))
	active.records += len(moved)
	for _, id := range moved {
		if d.where[id] == seg {
			d.where[id] = active
			seg.live--
			active.live++
			continue
		}
		// Done while being copied: its mark went to seg, which goes away;
		// the copy needs one too.
		active.acks = append(active.acks, id)
	}
	d.stats.Compacted += uint64(len(moved))
	stillLive := seg.live
	d.mu.Unlock()
	if stillLive != 0 {
		return fmt.Errorf("spool: compaction of segment %d left %d records behind", seg.num, stillLive)
	}
	if err := d.remove(seg); err != nil {
		return err
	}
	return syncDir(d.path)
}

// Err returns the error that broke the spool (wrapping ErrBroken), or
// nil while it works.
func (d *Dir) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Stats returns a snapshot. It does not block on I/O.
func (d *Dir) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Pending = len(d.where)
	for _, seg := range d.segs {
		s.Unsynced += len(seg.acks)
		s.Segments++
		s.Bytes += seg.size
	}
	return s
}

// Close makes the Done marks durable, deletes what is finished, and
// releases the directory. Records not done stay for the next Open. Append
// fails with ErrClosed afterwards.
func (d *Dir) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for d.writing || len(d.cur.buf) > 0 { // appends already admitted go in
		if d.writing {
			d.cond.Wait()
			continue
		}
		d.writeBatchLocked()
	}
	d.mu.Unlock()
	err := d.Sync()
	d.mu.Lock()
	for d.writing {
		d.cond.Wait()
	}
	// With nothing pending, the active segment is finished too.
	if act := d.segs[len(d.segs)-1]; err == nil && len(d.where) == 0 {
		act.sealed = true
		d.mu.Unlock()
		err = d.Sync()
		d.mu.Lock()
	}
	d.closeFilesLocked()
	d.mu.Unlock()
	d.lock.Close()
	return err
}

func (d *Dir) closeFiles() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeFilesLocked()
}

func (d *Dir) closeFilesLocked() {
	for _, s := range d.segs {
		s.close()
	}
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool: fsync %s: %w", path, err)
	}
	return nil
}

// Record frames: length (4 bytes, little endian) of the body, CRC-32C of
// the body (4), body: id (8), partition key length (uvarint), partition
// key, data.
const frameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendFrame(dst []byte, id uint64, e Entry) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = binary.LittleEndian.AppendUint64(dst, id)
	dst = binary.AppendUvarint(dst, uint64(len(e.PartitionKey)))
	dst = append(dst, e.PartitionKey...)
	dst = append(dst, e.Data...)
	body := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// readSegment calls fn for each intact record of the file, in order, and
// returns their ids and the bytes they span. A torn or corrupt record
// ends the file: nothing after it was ever acknowledged.
func readSegment(path string, fn func(Record)) ([]uint64, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("spool: read segment: %w", err)
	}
	var ids []uint64
	off := 0
	for len(b)-off >= frameHeader {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		sum := binary.LittleEndian.Uint32(b[off+4:])
		if n < 9 || len(b)-off-frameHeader < n {
			break
		}
		body := b[off+frameHeader : off+frameHeader+n]
		if crc32.Checksum(body, castagnoli) != sum {
			break
		}
		id := binary.LittleEndian.Uint64(body)
		kl, k := binary.Uvarint(body[8:])
		if k <= 0 || uint64(len(body)-8-k) < kl {
			break
		}
		key := string(body[8+k : 8+k+int(kl)])
		data := append([]byte(nil), body[8+k+int(kl):]...)
		fn(Record{ID: id, Entry: Entry{PartitionKey: key, Data: data}})
		ids = append(ids, id)
		off += frameHeader + n
	}
	return ids, int64(off), nil
}

// Mark entries: id (8 bytes) and the CRC-32C of those 8 bytes (4).
const ackSize = 12

func appendAck(dst []byte, id uint64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, id)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// readAcks returns the ids marked done in the file (none when it is
// missing), and cuts a torn tail off it so later marks are read.
func readAcks(path string) (map[uint64]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[uint64]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: read marks: %w", err)
	}
	ids := make(map[uint64]bool, len(b)/ackSize)
	off := 0
	for ; len(b)-off >= ackSize; off += ackSize {
		e := b[off : off+ackSize]
		if crc32.Checksum(e[:8], castagnoli) != binary.LittleEndian.Uint32(e[8:]) {
			break
		}
		ids[binary.LittleEndian.Uint64(e)] = true
	}
	if off != len(b) {
		if err := os.Truncate(path, int64(off)); err != nil {
			return nil, fmt.Errorf("spool: cut torn marks: %w", err)
		}
	}
	return ids, nil
}
