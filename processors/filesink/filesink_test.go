package filesink

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/worker"
)

// TestSyncsOnlyWhenACheckpointAsks: Process writes without fsyncing;
// Durable fsyncs (at most once per sync interval) and reports what is
// then durable; Flush always fsyncs. Each line is the Line's JSON.
func TestSyncsOnlyWhenACheckpointAsks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, err := Open(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Factory()(context.Background(), worker.Shard{ShardID: "s0", WorkerID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []worker.Record{
		{ShardID: "s0", SequenceNumber: "1", PartitionKey: "k", Data: []byte("a\tb <x>")},
		{ShardID: "s0", SequenceNumber: "2", PartitionKey: "k", Data: []byte("c")},
	}
	s.lastSync = time.Now().Add(-2 * time.Hour) // the interval has passed
	if err := p.Process(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if s.gen != 0 {
		t.Fatalf("Process fsynced (%d syncs)", s.gen)
	}
	if got := p.Durable().Position; got != (checkpoint.Position{Sequence: "2"}) || s.gen != 1 {
		t.Fatalf("Durable: %v after %d syncs, want 2 after one", got, s.gen)
	}
	// Within the interval Durable does not fsync again: the new record
	// is not durable yet.
	if err := p.Process(context.Background(), []worker.Record{{ShardID: "s0", SequenceNumber: "3", Data: []byte("d")}}); err != nil {
		t.Fatal(err)
	}
	if got := p.Durable().Position; got != (checkpoint.Position{Sequence: "2"}) || s.gen != 1 {
		t.Fatalf("Durable within the interval: %v after %d syncs, want 2 after one", got, s.gen)
	}
	cp, err := p.Flush(context.Background())
	if err != nil || cp.Position != (checkpoint.Position{Sequence: "3"}) || s.gen != 2 {
		t.Fatalf("Flush: %v %v after %d syncs, want 3 after two", cp, err, s.gen)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), b)
	}
	var l Line
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.Data != "a\tb <x>" || l.WorkerID != "w1" || l.SequenceNumber != "1" {
		t.Fatalf("first line %s: %+v %v", lines[0], l, err)
	}
	want, _ := json.Marshal(l)
	if lines[0] != string(want) {
		t.Fatalf("line %s, want json.Marshal's %s", lines[0], want)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string // each error names its key
	}{
		{"defaults with a path", Options{Path: "x.ndjson"}, nil},
		{"no path", Options{}, []string{"path is required"}},
		{"negative sync", Options{Path: "x", SyncInterval: -time.Second}, []string{"sync_interval -1s"}},
		{"both", Options{SyncInterval: -time.Second}, []string{"path is required", "sync_interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
			// NewSink refuses the same options.
			if _, err := NewSink(tt.o); !errors.Is(err, ErrConfig) {
				t.Errorf("NewSink: %v, want ErrConfig", err)
			}
		})
	}
}
