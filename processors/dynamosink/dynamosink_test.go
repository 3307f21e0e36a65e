package dynamosink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

var t0 = time.Date(2024, 5, 1, 13, 10, 0, 0, time.UTC)

func seq(n int) string { return fmt.Sprintf("49%054d", n) }

// msg is record n: an event of asset "a<n%assets>" of tenant "t1", with
// event id "e<id>".
func msg(n, assets int, id string) *processors.Message {
	return &processors.Message{
		Record: worker.Record{StreamName: "events", ShardID: "shardId-000", SequenceNumber: seq(n), PartitionKey: "pk", Data: []byte(strconv.Itoa(n))},
		Event: event.Event{EventTime: t0.Add(time.Duration(n) * time.Second), EventType: event.TypeView, EventID: "e" + id, Source: event.SourceApp,
			AssetID: "a" + strconv.Itoa(n%assets), Tenant: "t1", Bytes: int64(n), Status: 200},
		Parsed: true,
	}
}

func msgs(n, assets int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = msg(i, assets, strconv.Itoa(i))
	}
	return out
}

type fakeDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
}

func (d *fakeDL) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func newSink(t *testing.T, db *fakeDB, opts Options) *Sink {
	t.Helper()
	if opts.Table == "" {
		opts.Table = "backup"
	}
	s, err := New(t.Context(), db, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.retry.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	s.retry.Min, s.retry.Max = time.Millisecond, time.Millisecond
	return s
}

func openSink(t *testing.T, s *Sink, dl processors.DeadLetterer) processors.ShardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000"}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

func TestOptions(t *testing.T) {
	db := newFakeDB("backup")
	tests := []struct {
		name string
		yaml string
		deps processors.Deps
		want string // error substring, "" for success
	}{
		{"minimal", "table: backup", processors.Deps{DynamoDB: db}, ""},
		{"all", "table: backup\ncreate_table: true\nskip_no_asset: true\nconcurrency: 2", processors.Deps{DynamoDB: db}, ""},
		{"no table", "concurrency: 2", processors.Deps{DynamoDB: db}, "table is required"},
		{"bad table name", "table: a/b", processors.Deps{DynamoDB: db}, "table \"a/b\""},
		{"bad concurrency", "table: backup\nconcurrency: -1", processors.Deps{DynamoDB: db}, "concurrency"},
		{"unknown key", "table: backup\nbatch_size: 10", processors.Deps{DynamoDB: db}, "batch_size"},
		{"no client", "table: backup", processors.Deps{}, "Deps.DynamoDB"},
		{"missing table without create", "table: other\ncreate_table: false", processors.Deps{DynamoDB: newFakeDB("x")}, "create_table is false"},
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
			if s.Name() != "dynamodb" || !*s.(*Sink).Options().CreateTable {
				t.Fatalf("name %q, options %+v", s.Name(), s.(*Sink).Options())
			}
		})
	}
}

func TestKeys(t *testing.T) {
	pks := []struct{ tenant, asset, want string }{
		{"t1", "a1", "t1#a1"},
		{"", "a1", "-#a1"},
		{"t1", "", "t1#-"},
		{"a#b", "c", "a%23b#c"},
		{"50%", "x#y", "50%25#x#y"},
	}
	for _, tt := range pks {
		t.Run(tt.want, func(t *testing.T) {
			if got := PartitionKey(tt.tenant, tt.asset); got != tt.want {
				t.Fatalf("PartitionKey(%q, %q) = %q, want %q", tt.tenant, tt.asset, got, tt.want)
			}
		})
	}
	// Sort keys order by time, whatever the fraction or zone.
	times := []time.Time{
		t0, t0.Add(time.Nanosecond), t0.Add(100 * time.Millisecond), t0.Add(time.Second),
		t0.In(time.FixedZone("x", -3600)).Add(time.Hour), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var sks []string
	for _, tm := range times {
		sks = append(sks, SortKey(tm, "id"))
	}
	if !sort.StringsAreSorted(sks) {
		t.Fatalf("sort keys out of time order: %q", sks)
	}
	if from, to := SortKeyTime(t0), SortKeyTime(t0.Add(time.Second)); !(from < SortKey(t0, "z") && SortKey(t0, "z") < to && to < SortKey(t0.Add(time.Second), "a")) {
		t.Fatal("SortKeyTime bounds do not select [from, to)")
	}
}

func TestEnsureTable(t *testing.T) {
	good := []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange}}
	tests := []struct {
		name   string
		setup  func(db *fakeDB)
		create bool
		want   error
	}{
		{"created", func(db *fakeDB) {}, true, nil},
		{"exists", func(db *fakeDB) { db.exists, db.status, db.keySchema = true, types.TableStatusActive, good }, true, nil},
		{"exists, still creating", func(db *fakeDB) { db.exists, db.status, db.keySchema = true, types.TableStatusCreating, good }, false, nil},
		{"wrong schema", func(db *fakeDB) {
			db.exists, db.status = true, types.TableStatusActive
			db.keySchema = []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}}
		}, true, ErrTableSchema},
		{"race: another worker created it", func(db *fakeDB) {
			// DescribeTable says missing, then CreateTable loses the race.
			db.createErr = &types.ResourceInUseException{Message: aws.String("in use")}
			db.keySchema, db.status = good, types.TableStatusCreating
		}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newFakeDB("backup")
			tt.setup(db)
			if db.createErr != nil {
				// Make the table appear right after the first DescribeTable.
				api := &raceDB{fakeDB: db}
				_, err := New(t.Context(), api, Options{Table: "backup", CreateTable: &tt.create}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			_, err := New(t.Context(), db, Options{Table: "backup", CreateTable: &tt.create}, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
			if err == nil && (!db.exists || db.status != types.TableStatusActive) {
				t.Fatalf("table exists %v, status %s", db.exists, db.status)
			}
		})
	}
}

// raceDB makes the table appear (created by "another worker") after the
// sink's first DescribeTable.
type raceDB struct{ *fakeDB }

func (r *raceDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	r.mu.Lock()
	r.exists = true
	r.mu.Unlock()
	return r.fakeDB.CreateTable(ctx, in, opts...)
}

func TestWrite(t *testing.T) {
	big := msg(5, 3, "5")
	big.Event.Properties = json.RawMessage(`{"x":"` + strings.Repeat("y", MaxItemBytes) + `"}`)
	unparsed := msg(6, 3, "6")
	unparsed.Parsed = false
	noAsset := msg(7, 3, "7")
	noAsset.Event.AssetID = ""
	dup := msgs(10, 2)
	dup = append(dup, msg(10, 2, "0")) // event 0 again, other time: another item
	same := msg(11, 2, "1")
	same.Event.EventTime = dup[1].Event.EventTime
	same.Event.AssetID = dup[1].Event.AssetID
	dup = append(dup, same) // event 1 again, same time: the same key

	rejected := msgs(10, 3)
	rejected[4].Event.Properties = json.RawMessage(`{"x":"` + strings.Repeat("y", 2000) + `"}`)

	tests := []struct {
		name        string
		in          []*processors.Message
		opts        Options
		setup       func(db *fakeDB)
		items       int
		calls       int // BatchWriteItem calls, -1 to skip the check
		dead        []string
		deadErr     error
		assetA0     int // items of asset a0
		unprocessed bool
	}{
		{"chunks of 25", msgs(60, 3), Options{Concurrency: 1}, nil, 60, 3, nil, nil, 20, false},
		{"duplicate keys in one batch", dup, Options{}, nil, 11, 1, nil, nil, 6, false},
		{"unprocessed items retried", msgs(30, 3), Options{Concurrency: 1}, func(db *fakeDB) {
			db.unprocessed = func(call int, reqs []types.WriteRequest) []types.WriteRequest {
				if call <= 3 && len(reqs) > 1 {
					return reqs[len(reqs)/2:]
				}
				return nil
			}
		}, 30, -1, nil, nil, 10, true},
		{"item too large", []*processors.Message{msg(4, 3, "4"), big}, Options{}, nil, 1, 1, []string{seq(5)}, ErrItemTooLarge, 0, false},
		{"rejected item alone", rejected, Options{}, func(db *fakeDB) { db.maxDoc = 1500 }, 9, 11, []string{seq(4)}, ErrRejected, 4, false},
		{"not parsed", []*processors.Message{msg(4, 3, "4"), unparsed}, Options{}, nil, 1, 1, []string{seq(6)}, ErrNotParsed, 0, false},
		{"no asset kept", []*processors.Message{noAsset}, Options{}, nil, 1, 1, nil, nil, 0, false},
		{"no asset skipped", []*processors.Message{noAsset}, Options{SkipNoAsset: true}, nil, 0, 0, nil, nil, 0, false},
		{"throttled then ok", msgs(5, 1), Options{}, func(db *fakeDB) {
			db.fail = func(call int) error {
				if call <= 2 {
					return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
				}
				return nil
			}
		}, 5, 3, nil, nil, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newFakeDB("backup")
			s := newSink(t, db, tt.opts)
			if tt.setup != nil {
				tt.setup(db)
			}
			dl := &fakeDL{}
			ss := openSink(t, s, dl)
			if err := ss.Write(t.Context(), tt.in); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if d, want := ss.Durable(), tt.in[len(tt.in)-1].Position(); d != want {
				t.Errorf("Durable %v, want %v", d, want)
			}
			if tt.items >= 0 && db.count() != tt.items {
				t.Errorf("%d items, want %d", db.count(), tt.items)
			}
			if tt.calls >= 0 && db.calls != tt.calls {
				t.Errorf("%d BatchWriteItem calls, want %d", db.calls, tt.calls)
			}
			if tt.dead != nil && len(dl.msgs) != len(tt.dead) {
				t.Fatalf("%d dead letters, want %d", len(dl.msgs), len(tt.dead))
			}
			for i, m := range dl.msgs {
				if tt.dead != nil && m.Record.SequenceNumber != tt.dead[i] {
					t.Errorf("dead letter %d is %s, want %s", i, m.Record.SequenceNumber, tt.dead[i])
				}
				if f := m.Failed(); f == nil || f.Stage != "dynamodb" || !errors.Is(f.Err, tt.deadErr) {
					t.Errorf("dead letter %d: %+v, want %v", i, f, tt.deadErr)
				}
			}
			if tt.deadErr != nil && len(dl.msgs) == 0 {
				t.Error("nothing dead-lettered")
			}
			if tt.assetA0 > 0 {
				if got := len(db.query(PartitionKey("t1", "a0"))); got != tt.assetA0 {
					t.Errorf("asset a0 has %d items, want %d", got, tt.assetA0)
				}
			}
			for _, m := range tt.in {
				if m.Failed() != nil {
					t.Error("a shared message was marked failed")
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name      string
		fail      error
		permanent bool
	}{
		{"bad request", &apiErr{"SerializationException", "no", 400}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newFakeDB("backup")
			s := newSink(t, db, Options{})
			db.fail = func(int) error { return tt.fail }
			ss := openSink(t, s, &fakeDL{})
			err := ss.Write(t.Context(), msgs(3, 1))
			if err == nil || processors.IsPermanent(err) != tt.permanent {
				t.Fatalf("Write: %v, want permanent=%v", err, tt.permanent)
			}
			if d := ss.Durable(); !d.IsZero() {
				t.Fatalf("Durable %v after a failed Write", d)
			}
		})
	}
	t.Run("retries stop with the context", func(t *testing.T) {
		db := newFakeDB("backup")
		s := newSink(t, db, Options{})
		db.fail = func(int) error { return &apiErr{"InternalServerError", "oops", 500} }
		ss := openSink(t, s, &fakeDL{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := ss.Write(ctx, msgs(3, 1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write: %v, want the context's error", err)
		}
	})
}

func TestConcurrency(t *testing.T) {
	db := newFakeDB("backup")
	s := newSink(t, db, Options{Concurrency: 3})
	ss := openSink(t, s, &fakeDL{})
	for i := 0; i < 4; i++ {
		if err := ss.Write(t.Context(), msgs(250, 7)); err != nil {
			t.Fatal(err)
		}
	}
	if db.count() != 250 {
		t.Fatalf("%d items, want 250 (replays overwrite)", db.count())
	}
	if db.maxInFlight > 3 {
		t.Fatalf("%d requests in flight, limit 3", db.maxInFlight)
	}
}

// TestBatchRetryWaits pins the waits between tries of a batch write:
// from 50ms doubling to 5s, each drawn in [d/2, 3d/2), started over when
// a try writes some of the items.
func TestBatchRetryWaits(t *testing.T) {
	db := newFakeDB("backup")
	s := newSink(t, db, Options{Concurrency: 1})
	s.retry.Min, s.retry.Max = 50*time.Millisecond, 5*time.Second
	var waits []time.Duration
	s.retry.Rand = func(int64) int64 { return 0 } // the shortest draw
	s.retry.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	db.fail = func(call int) error {
		if call <= 3 {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		return nil
	}
	db.unprocessed = func(call int, reqs []types.WriteRequest) []types.WriteRequest {
		switch call {
		case 4: // progress: half written
			return reqs[len(reqs)/2:]
		case 5, 6: // none written
			return reqs
		}
		return nil
	}
	ss := openSink(t, s, &fakeDL{})
	if err := ss.Write(t.Context(), msgs(10, 10)); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := fmt.Sprint([]time.Duration{25 * ms, 50 * ms, 100 * ms, 25 * ms, 50 * ms, 100 * ms})
	if got := fmt.Sprint(waits); got != want {
		t.Fatalf("waits %s, want %s", got, want)
	}
	if db.count() != 10 {
		t.Fatalf("%d items, want 10", db.count())
	}
}
