package ingest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTrackerWatermark(t *testing.T) {
	boom := errors.New("boom")
	type op struct {
		settle int // index of the record (in put order) to settle
		err    error
	}
	tests := []struct {
		name      string
		lines     []int // lines of the records put
		ops       []op
		wantLine  int
		wantBelow int64
		wantErr   error
	}{
		{name: "nothing settled", lines: []int{3, 4, 5}, wantLine: 2},
		{name: "in order", lines: []int{3, 4, 5}, ops: []op{{0, nil}, {1, nil}}, wantLine: 4, wantBelow: 2},
		{name: "out of order waits for the gap", lines: []int{3, 4, 5}, ops: []op{{2, nil}, {1, nil}}, wantLine: 2},
		{name: "gap filled", lines: []int{3, 4, 9}, ops: []op{{2, nil}, {1, nil}, {0, nil}}, wantLine: 9, wantBelow: 3},
		{name: "failure stops it for good", lines: []int{3, 4, 5}, ops: []op{{0, nil}, {1, boom}, {2, nil}}, wantLine: 3, wantBelow: 1, wantErr: boom},
		{name: "settled twice counts once", lines: []int{3, 4}, ops: []op{{0, nil}, {0, nil}}, wantLine: 3, wantBelow: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(2)
			var seqs []int64
			for _, l := range tt.lines {
				seqs = append(seqs, tr.add(l))
			}
			for _, o := range tt.ops {
				tr.settle(seqs[o.settle], o.err)
			}
			line, below, err := tr.state()
			if line != tt.wantLine || below != tt.wantBelow || !errors.Is(err, tt.wantErr) {
				t.Fatalf("state (%d, %d, %v), want (%d, %d, %v)", line, below, err, tt.wantLine, tt.wantBelow, tt.wantErr)
			}
		})
	}
}

func TestTrackerWaits(t *testing.T) {
	tr := newTracker(0)
	a := tr.add(1)
	b := tr.add(2)
	c := tr.add(3)
	tr.abandon(c) // not accepted by the producer: forgotten
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.waitRoom(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitRoom with 2 of 2 in flight: %v, want to block until the deadline", err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		tr.settle(a, nil)
	}()
	if err := tr.waitRoom(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if all, err := tr.waitChange(short); all || err == nil {
		t.Fatalf("waitChange with one record in flight and nothing settling: (%v, %v), want to block until the deadline", all, err)
	}
	tr.settle(b, nil)
	if all, _ := tr.waitChange(context.Background()); !all {
		t.Fatal("not all settled after the last record (the abandoned one must not count)")
	}
	if line, below, _ := tr.state(); line != 2 || below != 2 {
		t.Fatalf("watermark (%d, %d), want (2, 2)", line, below)
	}
}
