package ingest_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leasehold/leasehold/ingest"
)

func TestProgressDisplays(t *testing.T) {
	snaps := []ingest.Progress{
		{Listing: true, Files: 10, Active: 4, BytesRead: 1_000_000, BytesTotal: 10_000_000, BytesRemaining: 9_000_000, Records: 2000, Elapsed: time.Second},
		{Files: 20, Done: 9, Failed: 1, Active: 4, BytesRead: 5_000_000, BytesTotal: 20_000_000, BytesRemaining: 15_000_000, Records: 10000, Elapsed: 2 * time.Second},
		{Files: 20, Done: 19, Failed: 1, BytesRead: 20_000_000, BytesTotal: 20_000_000, Records: 40000, Elapsed: 5 * time.Second, Final: true},
	}
	var term bytes.Buffer
	show := ingest.TerminalProgress(&term)
	core, logs := observer.New(zap.InfoLevel)
	logp := ingest.LogProgress(zap.New(core))
	var lines []string
	for _, p := range snaps {
		term.Reset()
		show(p)
		lines = append(lines, term.String())
		logp(p)
	}
	tests := []struct {
		i    int
		want []string
		not  []string
	}{
		{0, []string{"\r[==", "0/10+ files", "1.0 MB/10.0 MB+", "2000 lines/s"}, []string{"ETA", "\n"}},
		{1, []string{"10/20 files (1 failed)", "5.0 MB/20.0 MB", "8000 lines/s", "ETA 4s"}, []string{"\n"}},
		{2, []string{"[========================] 20/20 files", "\n"}, nil},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(lines[tt.i], w) {
				t.Errorf("snapshot %d shows %q, want %q in it", tt.i, lines[tt.i], w)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(lines[tt.i], w) {
				t.Errorf("snapshot %d shows %q, want no %q", tt.i, lines[tt.i], w)
			}
		}
	}
	entries := logs.All()
	if len(entries) != 3 || entries[0].Message != "progress" {
		t.Fatalf("log entries %v", entries)
	}
	f := entries[1].ContextMap()
	if f["done"] != int64(9) || f["lines_per_sec"] != 8000.0 || f["eta"] != 4*time.Second {
		t.Fatalf("log fields %v", f)
	}
}
