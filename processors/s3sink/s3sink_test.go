package s3sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

var t0 = time.Date(2024, 5, 1, 13, 10, 0, 0, time.UTC)

// seq is the sequence number of record n: 56 digits, as Kinesis's.
func seq(n int) string { return fmt.Sprintf("49%054d", n) }

// msg is parsed record n of shardId-000 with event time at.
func msg(n int, at time.Time) *processors.Message {
	return &processors.Message{
		Record: worker.Record{StreamName: "events", ShardID: "shardId-000", SequenceNumber: seq(n), PartitionKey: "pk", Data: []byte(strconv.Itoa(n)), ArrivalTime: t0},
		Event:  event.Event{EventTime: at, EventType: event.TypeView, EventID: "e" + strconv.Itoa(n), Source: event.SourceApp, AssetID: "a1"},
		Parsed: true,
	}
}

// msgs returns records 0..n-1; hours > 1 spreads event times over that
// many hours, interleaved.
func msgs(n, hours int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = msg(i, t0.Add(time.Duration(i%hours)*time.Hour+time.Duration(i)*time.Millisecond))
	}
	return out
}

// lineLen is the archived line length of record n.
func lineLen(n int) int {
	m := msg(n, t0)
	r := m.Record
	m.Event.SourceRecord = event.SourceRecord{Stream: r.StreamName, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber}
	return len(m.Event.AppendJSON(nil)) + 1
}

type fakeDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
	err  error
}

func (d *fakeDL) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.msgs = append(d.msgs, msgs...)
	return nil
}

// clock is a settable clock for max_age.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newSink(t *testing.T, api API, opts Options) (*Sink, *clock) {
	t.Helper()
	if opts.Bucket == "" {
		opts.Bucket = "archive"
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour // the age loop stays out of the way
	}
	s, err := New(api, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	s.now = c.now
	s.retry.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	s.retry.Min, s.retry.Max = time.Millisecond, time.Millisecond
	return s, c
}

func open(t *testing.T, s *Sink, dl processors.DeadLetterer) *shardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000"}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss.(*shardSink)
}

// writeAll writes ms in batches of size n.
func writeAll(t *testing.T, ss *shardSink, ms []*processors.Message, n int) {
	t.Helper()
	for i := 0; i < len(ms); i += n {
		if err := ss.Write(t.Context(), ms[i:min(i+n, len(ms))]); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// archived reads every object, checks its key, metadata and partition
// against its lines, and counts each record's occurrences.
func archived(t *testing.T, f *fakeS3) (map[string]int, []string) {
	t.Helper()
	count := map[string]int{}
	keys := f.keys()
	for _, k := range keys {
		o := f.get(k)
		zr, err := gzip.NewReader(bytes.NewReader(o.body))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		var first, last checkpoint.Position
		n := 0
		for sc.Scan() {
			var ev event.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s line %d: %v", k, n+1, err)
			}
			p := checkpoint.Position{Sequence: ev.SourceRecord.SequenceNumber, Sub: ev.SourceRecord.SubSequenceNumber}
			if n == 0 {
				first = p
				if want := Key("events/", ev.EventTime, "events", "shardId-000", p); k != want {
					t.Errorf("key %s, want %s", k, want)
				}
			} else if !checkpoint.Less(last, p) {
				t.Errorf("%s: %s after %s: out of order", k, p, last)
			}
			if !strings.Contains(k, partitionDir(ev.EventTime)) {
				t.Errorf("%s holds an event of %s", k, ev.EventTime)
			}
			last = p
			count[p.Sequence]++
			n++
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if o.meta[MetaFirstSequence] != first.Sequence || o.meta[MetaLastSequence] != last.Sequence || o.meta[MetaRecords] != strconv.Itoa(n) {
			t.Errorf("%s: metadata %v, want first %s last %s records %d", k, o.meta, first, last, n)
		}
	}
	return count, keys
}

// exactlyOnce fails unless records 0..n-1 are each archived exactly once.
func exactlyOnce(t *testing.T, f *fakeS3, n int) []string {
	t.Helper()
	count, keys := archived(t, f)
	for i := range n {
		if c := count[seq(i)]; c != 1 {
			t.Errorf("record %d archived %d times", i, c)
		}
	}
	if len(count) != n {
		t.Errorf("%d distinct records archived, want %d", len(count), n)
	}
	return keys
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; "" for valid
	}{
		{"minimal", Options{Bucket: "b"}, ""},
		{"all set", Options{Bucket: "b", Prefix: "a/b/", MaxBytes: 1, MaxRecords: 1, MaxAge: time.Second, PartitionBy: "arrival_time"}, ""},
		{"no bucket", Options{}, "bucket is required"},
		{"prefix without slash", Options{Bucket: "b", Prefix: "events"}, "prefix"},
		{"prefix with leading slash", Options{Bucket: "b", Prefix: "/events/"}, "prefix"},
		{"negative max_bytes", Options{Bucket: "b", MaxBytes: -1}, "max_bytes"},
		{"huge max_bytes", Options{Bucket: "b", MaxBytes: 6 << 30}, "max_bytes"},
		{"negative max_records", Options{Bucket: "b", MaxRecords: -1}, "max_records"},
		{"negative max_age", Options{Bucket: "b", MaxAge: -time.Second}, "max_age"},
		{"bad partition_by", Options{Bucket: "b", PartitionBy: "ingest_time"}, "partition_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig)):
				t.Fatalf("Validate: %v, want an ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	api := newFakeS3("archive")
	tests := []struct {
		name string
		yaml string
		deps processors.Deps
		want string
		opts Options
	}{
		{"defaults", "bucket: archive", processors.Deps{S3: api}, "",
			Options{Bucket: "archive", Prefix: "events/", MaxBytes: 64 << 20, MaxBufferedBytes: 256 << 20, MaxRecords: 100000, MaxAge: time.Minute, PartitionBy: "event_time", Name: "s3"}},
		{"all", "bucket: archive\nprefix: raw/\nmax_bytes: 1000\nmax_buffered_bytes: 5000\nmax_records: 10\nmax_age: 90s\npartition_by: arrival_time", processors.Deps{S3: api}, "",
			Options{Bucket: "archive", Prefix: "raw/", MaxBytes: 1000, MaxBufferedBytes: 5000, MaxRecords: 10, MaxAge: 90 * time.Second, PartitionBy: "arrival_time", Name: "s3"}},
		{"unknown key", "bucket: archive\nmax_size: 3", processors.Deps{S3: api}, "max_size", Options{}},
		{"bad value", "bucket: archive\nmax_age: soon", processors.Deps{S3: api}, "pipeline.sinks[0]", Options{}},
		{"no client", "bucket: archive", processors.Deps{}, "Deps.S3", Options{}},
		{"invalid", "prefix: x", processors.Deps{S3: api}, "bucket is required", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			s, err := FromConfig(t.Context(), processors.NewOptions("pipeline.sinks[0]", "", doc.Content[0]), tt.deps)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err %v, want one naming %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.(*Sink).Options(); got != tt.opts {
				t.Fatalf("options %+v, want %+v", got, tt.opts)
			}
			if s.Name() != "s3" {
				t.Fatalf("name %q", s.Name())
			}
		})
	}
}

func TestKeyAndParse(t *testing.T) {
	tests := []struct {
		key   string
		first checkpoint.Position
		ok    bool
	}{
		{"events/dt=2024-05-01/hour=13/s/shardId-000/" + seq(7) + "-0.ndjson.gz", checkpoint.Position{Sequence: seq(7)}, true},
		{"events/dt=2024-05-01/hour=13/s/shardId-000/" + seq(7) + "-12.ndjson.gz", checkpoint.Position{Sequence: seq(7), Sub: 12}, true},
		{"events/x/" + seq(7) + ".ndjson.gz", checkpoint.Position{}, false},
		{"events/x/" + seq(7) + "-a.ndjson.gz", checkpoint.Position{}, false},
		{"events/x/" + seq(7) + "-0.json", checkpoint.Position{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := parseKey(tt.key)
			if ok != tt.ok || got != tt.first {
				t.Fatalf("parseKey = %v, %v; want %v, %v", got, ok, tt.first, tt.ok)
			}
		})
	}
	want := "events/dt=2024-05-01/hour=13/events/shardId-000/" + seq(3) + "-2.ndjson.gz"
	if got := Key("events/", t0.In(time.FixedZone("x", 3600)), "events", "shardId-000", checkpoint.Position{Sequence: seq(3), Sub: 2}); got != want {
		t.Fatalf("Key = %s, want %s (partitions are UTC)", got, want)
	}
}

func TestThresholds(t *testing.T) {
	line := lineLen(0)
	tests := []struct {
		name        string
		opts        Options
		n           int
		beforeFlush int // objects written by Write alone
		after       int // objects after Flush
	}{
		{"max_records", Options{MaxRecords: 10}, 35, 3, 4},
		{"max_records exact", Options{MaxRecords: 5}, 10, 2, 2},
		{"max_bytes", Options{MaxBytes: int64(line * 4)}, 20, 5, 5},
		{"neither", Options{}, 50, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3("archive")
			s, _ := newSink(t, f, tt.opts)
			ss := open(t, s, &fakeDL{})
			writeAll(t, ss, msgs(tt.n, 1), 3)
			if got := len(f.keys()); got != tt.beforeFlush {
				t.Errorf("%d objects before Flush, want %d", got, tt.beforeFlush)
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			keys := exactlyOnce(t, f, tt.n)
			if len(keys) != tt.after {
				t.Errorf("%d objects after Flush, want %d: %v", len(keys), tt.after, keys)
			}
			if d := ss.Durable(); d.Sequence != seq(tt.n-1) {
				t.Errorf("Durable %s, want record %d", d, tt.n-1)
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	f := newFakeS3("archive")
	s, c := newSink(t, f, Options{MaxAge: time.Minute})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(3, 1), 3)
	c.add(30 * time.Second)
	writeAll(t, ss, []*processors.Message{msg(3, t0.Add(2*time.Hour))}, 1) // another partition, younger
	steps := []struct {
		advance time.Duration
		objects int
		durable int // last durable record, -1 for none
	}{
		{0, 0, -1},
		{29 * time.Second, 0, -1},
		{time.Second, 1, 2},      // the first partition is 60 s old
		{29 * time.Second, 1, 2}, // the second is 59 s old
		{time.Second, 2, 3},
	}
	for i, st := range steps {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c.add(st.advance)
			if err := ss.flushAged(t.Context(), false); err != nil {
				t.Fatal(err)
			}
			if got := len(f.keys()); got != st.objects {
				t.Errorf("%d objects, want %d", got, st.objects)
			}
			want := checkpoint.Position{}
			if st.durable >= 0 {
				want.Sequence = seq(st.durable)
			}
			if d := ss.Durable(); d != want {
				t.Errorf("Durable %v, want %v", d, want)
			}
		})
	}
}

func TestAgeLoop(t *testing.T) {
	f := newFakeS3("archive")
	s, err := New(f, Options{Bucket: "archive", MaxAge: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(5, 1), 5)
	deadline := time.Now().Add(10 * time.Second)
	for ss.Durable().Sequence != seq(4) {
		if time.Now().After(deadline) {
			t.Fatal("a trickle never reached S3 without Flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
	exactlyOnce(t, f, 5)
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ss.done:
	default:
		t.Fatal("age loop still running after Close")
	}
}

func TestPartitions(t *testing.T) {
	tests := []struct {
		name        string
		partitionBy string
		hours       int
		wantDirs    []string
	}{
		{"event time over three hours", PartitionByEventTime, 3, []string{"dt=2024-05-01/hour=13/", "dt=2024-05-01/hour=14/", "dt=2024-05-01/hour=15/"}},
		{"event time across midnight", PartitionByEventTime, 12, nil},
		{"arrival time", PartitionByArrivalTime, 3, []string{"dt=2024-05-01/hour=13/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3("archive")
			s, _ := newSink(t, f, Options{PartitionBy: tt.partitionBy})
			ss := open(t, s, &fakeDL{})
			ms := msgs(60, tt.hours)
			writeAll(t, ss, ms, 7)
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			keys := f.keys()
			if tt.partitionBy == PartitionByEventTime {
				exactlyOnce(t, f, 60) // also checks each line's partition
				if len(keys) != tt.hours {
					t.Fatalf("%d objects, want one per hour (%d): %v", len(keys), tt.hours, keys)
				}
			}
			for i, d := range tt.wantDirs {
				if !strings.HasPrefix(keys[i], "events/"+d+"events/shardId-000/") {
					t.Errorf("key %s, want it under %s", keys[i], d)
				}
			}
		})
	}
}

func TestMemoryBoundAcrossPartitions(t *testing.T) {
	f := newFakeS3("archive")
	line := int64(lineLen(0))
	s, _ := newSink(t, f, Options{MaxBytes: 10 * line})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(100, 10), 10) // 10 partitions, 10 records each
	ss.mu.Lock()
	held := ss.openBytes
	ss.mu.Unlock()
	if held > 10*line {
		t.Fatalf("%d bytes held open, bound is %d", held, 10*line)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, 100)
}

func TestKeyDeterminism(t *testing.T) {
	var first []string
	for i, batch := range []int{1, 9, 100} {
		f := newFakeS3("archive")
		s, _ := newSink(t, f, Options{MaxRecords: 8})
		ss := open(t, s, &fakeDL{})
		writeAll(t, ss, msgs(50, 2), batch)
		if err := ss.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		keys := f.keys()
		if i == 0 {
			first = keys
			continue
		}
		if fmt.Sprint(keys) != fmt.Sprint(first) {
			t.Fatalf("batches of %d gave keys %v, batches of 1 gave %v", batch, keys, first)
		}
	}
}

// TestReplayExactlyOnce replays from many resume points with other
// thresholds and batch sizes: each record stays in exactly one object.
func TestReplayExactlyOnce(t *testing.T) {
	const n = 60
	for _, from := range []int{0, 3, 22, 41, 59} {
		for _, maxRecords := range []int{3, 11, 100} {
			for _, batch := range []int{1, 4, 13} {
				t.Run(fmt.Sprintf("from%d/max%d/batch%d", from, maxRecords, batch), func(t *testing.T) {
					f := newFakeS3("archive")
					first, _ := newSink(t, f, Options{MaxRecords: 7})
					ss := open(t, first, &fakeDL{})
					writeAll(t, ss, msgs(n, 3), 10)
					if err := ss.Flush(t.Context()); err != nil {
						t.Fatal(err)
					}
					before := len(f.keys())

					again, _ := newSink(t, f, Options{MaxRecords: maxRecords})
					rs := open(t, again, &fakeDL{})
					writeAll(t, rs, msgs(n, 3)[from:], batch)
					if err := rs.Flush(t.Context()); err != nil {
						t.Fatal(err)
					}
					exactlyOnce(t, f, n)
					if after := len(f.keys()); after != before {
						t.Errorf("replay wrote %d new objects for records already archived", after-before)
					}
					if d := rs.Durable(); d.Sequence != seq(n-1) {
						t.Errorf("replay Durable %v, want record %d", d, n-1)
					}
				})
			}
		}
	}
}

// TestReplayPartial: the first run archived only part of the stream
// (crash); the replay fills in the rest, each record once.
func TestReplayPartial(t *testing.T) {
	const n = 80
	for _, archivedUpTo := range []int{5, 33, 70} {
		t.Run(fmt.Sprint(archivedUpTo), func(t *testing.T) {
			f := newFakeS3("archive")
			first, _ := newSink(t, f, Options{MaxRecords: 6})
			ss := open(t, first, &fakeDL{})
			writeAll(t, ss, msgs(n, 2)[:archivedUpTo], 4)
			// Crash: whatever was not flushed is lost. The replay starts
			// where the checkpoint (Durable) was.
			from := 0
			if d := ss.Durable(); !d.IsZero() {
				from, _ = strconv.Atoi(strings.TrimLeft(d.Sequence[2:], "0"))
				from++
			}
			_ = ss.Close()
			again, _ := newSink(t, f, Options{MaxRecords: 9})
			rs := open(t, again, &fakeDL{})
			writeAll(t, rs, msgs(n, 2)[from:], 5)
			if err := rs.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, f, n)
		})
	}
}

// TestZombie412: a zombie (stale view of S3) writes after the new owner
// archived the same records: conditional puts refuse, the zombie skips
// what the existing objects hold.
func TestZombie412(t *testing.T) {
	const n = 50
	f := newFakeS3("archive")
	zs, _ := newSink(t, f, Options{MaxRecords: 4})
	zombie := open(t, zs, &fakeDL{})
	writeAll(t, zombie, msgs(n, 2)[:6], 6) // indexes both partitions
	if err := zombie.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ownerSink, _ := newSink(t, f, Options{MaxRecords: 7})
	owner := open(t, ownerSink, &fakeDL{})
	writeAll(t, owner, msgs(n, 2)[6:], 9)
	if err := owner.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := len(f.keys())
	writeAll(t, zombie, msgs(n, 2)[6:], 3)
	if err := zombie.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, n)
	if _, exists, _, _ := f.counts(); exists == 0 {
		t.Error("no 412: the zombie's stale index was never exercised")
	}
	if after := len(f.keys()); after != before {
		t.Errorf("the zombie wrote %d objects", after-before)
	}
	if d := zombie.Durable(); d.Sequence != seq(n-1) {
		t.Errorf("zombie Durable %v, want record %d", d, n-1)
	}
}

// TestNewObjectEndsBeforeAnExistingOne: an object of an earlier run
// starts in the middle of the buffer (its run resumed there); the new
// objects end before it and resume after it.
func TestNewObjectEndsBeforeAnExistingOne(t *testing.T) {
	f := newFakeS3("archive")
	earlier, _ := newSink(t, f, Options{})
	es := open(t, earlier, &fakeDL{})
	writeAll(t, es, msgs(20, 1)[5:10], 5)
	if err := es.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, _ := newSink(t, f, Options{})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(20, 1), 20)
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys := exactlyOnce(t, f, 20)
	want := []string{
		Key("events/", t0, "events", "shardId-000", checkpoint.Position{Sequence: seq(0)}),  // 0-4, new
		Key("events/", t0, "events", "shardId-000", checkpoint.Position{Sequence: seq(5)}),  // 5-9, the earlier run's
		Key("events/", t0, "events", "shardId-000", checkpoint.Position{Sequence: seq(10)}), // 10-19, new
	}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

// TestIndexEviction: with more partitions than indexes kept, an evicted
// partition is listed again and replays stay exact.
func TestIndexEviction(t *testing.T) {
	f := newFakeS3("archive")
	s, _ := newSink(t, f, Options{MaxRecords: 2})
	s.maxIndexes = 2
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(40, 5), 3)
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, _, _, lists := f.counts()
	if lists <= 5 {
		t.Fatalf("%d lists for 5 partitions and 2 indexes: nothing was evicted", lists)
	}
	again, _ := newSink(t, f, Options{MaxRecords: 3})
	again.maxIndexes = 2
	rs := open(t, again, &fakeDL{})
	writeAll(t, rs, msgs(40, 5)[7:], 4)
	if err := rs.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, 40)
}

func TestListPagination(t *testing.T) {
	f := newFakeS3("archive")
	f.pageSize = 2
	s, _ := newSink(t, f, Options{MaxRecords: 3})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(30, 1), 30)
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, _ := newSink(t, f, Options{MaxRecords: 4})
	rs := open(t, again, &fakeDL{})
	writeAll(t, rs, msgs(30, 1)[13:], 5)
	if err := rs.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, 30)
}

// TestDurableAcrossPartitions: with several partitions open, Durable is
// the position before the oldest record not in S3, whichever partition
// holds it.
func TestDurableAcrossPartitions(t *testing.T) {
	f := newFakeS3("archive")
	s, _ := newSink(t, f, Options{MaxRecords: 4})
	ss := open(t, s, &fakeDL{})
	// Even records go to hour 13, odd ones to hour 14.
	writeAll(t, ss, msgs(7, 2), 7) // hour 13 gets 0,2,4,6 and is written
	if got := len(f.keys()); got != 1 {
		t.Fatalf("%d objects, want hour 13's", got)
	}
	if d := ss.Durable(); d.Sequence != seq(0) {
		t.Fatalf("Durable %v, want record 0 (record 1 is still in memory)", d)
	}
	writeAll(t, ss, msgs(9, 2)[7:], 2) // 7 (hour 14: 1,3,5,7 → written), 8
	if d := ss.Durable(); d.Sequence != seq(7) {
		t.Fatalf("Durable %v, want record 7 (record 8 is in memory)", d)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := ss.Durable(); d.Sequence != seq(8) {
		t.Fatalf("Durable %v after Flush, want record 8", d)
	}
	exactlyOnce(t, f, 9)
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		bucket    string
		fail      func(n int) error // n counts put attempts
		permanent bool
		puts      int // successful puts
	}{
		{"bad request", "archive", func(int) error { return &apiErr{"InvalidArgument", 400} }, true, 0},
		{"503 twice then ok", "archive", func(n int) error {
			if n <= 2 {
				return &apiErr{"ServiceUnavailable", 503}
			}
			return nil
		}, false, 1},
		{"slow down", "archive", func(n int) error {
			if n == 1 {
				return &apiErr{"SlowDown", 503}
			}
			return nil
		}, false, 1},
		{"throttled 429", "archive", func(n int) error {
			if n == 1 {
				return &apiErr{"TooManyRequests", 429}
			}
			return nil
		}, false, 1},
		{"connection reset", "archive", func(n int) error {
			if n == 1 {
				return errors.New("read tcp: connection reset by peer")
			}
			return nil
		}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3("archive")
			attempts := 0
			if tt.fail != nil {
				f.fail = func(op, _ string) error {
					if op != "put" {
						return nil
					}
					attempts++
					return tt.fail(attempts)
				}
			}
			s, _ := newSink(t, f, Options{Bucket: tt.bucket})
			ss := open(t, s, &fakeDL{})
			writeAll(t, ss, msgs(5, 1), 5)
			err := ss.Flush(t.Context())
			if tt.permanent {
				if err == nil || !processors.IsPermanent(err) {
					t.Fatalf("Flush: %v, want a permanent error", err)
				}
				if d := ss.Durable(); !d.IsZero() {
					t.Fatalf("Durable %v after a failed write", d)
				}
				if err := ss.Write(t.Context(), msgs(6, 1)[5:]); err == nil {
					t.Fatal("Write after a permanent failure succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if puts, _, _, _ := f.counts(); puts != tt.puts {
				t.Fatalf("%d objects written, want %d", puts, tt.puts)
			}
			exactlyOnce(t, f, 5)
		})
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	f := newFakeS3("archive")
	f.fail = func(string, string) error { return &apiErr{"InternalError", 500} }
	s, _ := newSink(t, f, Options{})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(3, 1), 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ss.Flush(ctx); !errors.Is(err, context.Canceled) || processors.IsPermanent(err) {
		t.Fatalf("Flush: %v, want the context's error", err)
	}
	f.fail = nil
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatalf("Flush after S3 recovered: %v", err)
	}
	exactlyOnce(t, f, 3)
}

func TestExistingObjectWithoutMetadata(t *testing.T) {
	f := newFakeS3("archive")
	key := Key("events/", t0, "events", "shardId-000", checkpoint.Position{Sequence: seq(0)})
	f.objects[key] = object{body: []byte("x"), meta: map[string]string{}}
	s, _ := newSink(t, f, Options{})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(3, 1), 3)
	err := ss.Flush(t.Context())
	if !errors.Is(err, ErrNoPosition) || !processors.IsPermanent(err) {
		t.Fatalf("Flush: %v, want ErrNoPosition", err)
	}
	if got := f.get(key); string(got.body) != "x" {
		t.Fatal("the existing object was overwritten")
	}
}

func TestDeadLetters(t *testing.T) {
	unparsed := msg(1, t0)
	unparsed.Parsed = false
	noTime := msg(3, time.Time{})
	tests := []struct {
		name string
		in   []*processors.Message
		dead []int // record numbers dead-lettered
		errs []error
	}{
		{"unparsed", []*processors.Message{msg(0, t0), unparsed, msg(2, t0)}, []int{1}, []error{ErrNotParsed}},
		{"no event time", []*processors.Message{msg(2, t0), noTime}, []int{3}, []error{ErrNoEventTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3("archive")
			s, _ := newSink(t, f, Options{})
			dl := &fakeDL{}
			ss := open(t, s, dl)
			if err := ss.Write(t.Context(), tt.in); err != nil {
				t.Fatal(err)
			}
			if len(dl.msgs) != len(tt.dead) {
				t.Fatalf("%d dead letters, want %d", len(dl.msgs), len(tt.dead))
			}
			for i, m := range dl.msgs {
				fl := m.Failed()
				if m.Record.SequenceNumber != seq(tt.dead[i]) || fl == nil || fl.Stage != "s3" || !errors.Is(fl.Err, tt.errs[i]) {
					t.Errorf("dead letter %d: %s %+v", i, m.Record.SequenceNumber, fl)
				}
			}
			for _, m := range tt.in {
				if m.Failed() != nil {
					t.Error("the shared message was marked failed; other sinks would see it")
				}
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d, last := ss.Durable(), tt.in[len(tt.in)-1].Position(); d != last {
				t.Errorf("Durable %v, want %v", d, last)
			}
		})
	}
	t.Run("dead-letter failure stops the write", func(t *testing.T) {
		f := newFakeS3("archive")
		s, _ := newSink(t, f, Options{})
		ss := open(t, s, &fakeDL{err: errors.New("down")})
		if err := ss.Write(t.Context(), []*processors.Message{msg(0, t0), unparsed}); err == nil {
			t.Fatal("Write succeeded although the dead letter was not stored")
		}
		if d := ss.Durable(); !d.IsZero() {
			t.Fatalf("Durable %v", d)
		}
	})
}

func TestHeadNotFoundAfter412(t *testing.T) {
	// The object that caused a 412 is deleted before the HEAD: the sink
	// writes the records again under the same key.
	f := newFakeS3("archive")
	key := Key("events/", t0, "events", "shardId-000", checkpoint.Position{Sequence: seq(0)})
	s, _ := newSink(t, f, Options{})
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(3, 1), 3)
	if _, err := ss.index(t.Context(), partitionDir(t0)); err != nil { // index before the object appears
		t.Fatal(err)
	}
	f.objects[key] = object{body: []byte("x"), meta: map[string]string{MetaLastSequence: seq(2), MetaLastSub: "0"}}
	deleted := false
	f.fail = func(op, k string) error {
		if op == "head" && !deleted {
			deleted = true
			delete(f.objects, k)
		}
		return nil
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, 3)
}

// BenchmarkWrite archives events through a shard sink into the in-memory
// fake (encoding, buffering, gzip; no network), in batches of 500.
func BenchmarkWrite(b *testing.B) {
	f := newFakeS3("archive")
	s, err := New(f, Options{Bucket: "archive", MaxAge: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ss, err := s.Open(b.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000"}, &fakeDL{})
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	batch := msgs(500, 2)
	line := lineLen(0)
	b.SetBytes(int64(line * len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, m := range batch { // fresh positions, so nothing is skipped
			m.Record.SequenceNumber = seq(i*len(batch) + j)
		}
		if err := ss.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := ss.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
}

// TestRetryWaits pins the waits between tries of a failing S3 request:
// from 100ms doubling to 10s, each drawn in [d/2, 3d/2).
func TestRetryWaits(t *testing.T) {
	f := newFakeS3("archive")
	fails := 0
	f.fail = func(string, string) error {
		if fails < 9 {
			fails++
			return &apiErr{"SlowDown", 503}
		}
		return nil
	}
	s, err := New(f, Options{Bucket: "archive", MaxAge: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.retry.Rand = func(n int64) int64 { return n - 1 } // the longest draw
	s.retry.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	ss := open(t, s, &fakeDL{})
	writeAll(t, ss, msgs(3, 1), 3)
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []time.Duration{150*ms - 1, 300*ms - 1, 600*ms - 1, 1200*ms - 1, 2400*ms - 1, 4800*ms - 1, 9600*ms - 1, 15*time.Second - 1, 15*time.Second - 1}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}
