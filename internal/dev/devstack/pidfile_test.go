package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "kinesis.pid")
	want := Record{
		Service: "kinesis", PID: 4242, StartTicks: 99, Argv: []string{"/usr/bin/node", "main.js"},
		Endpoint: "http://127.0.0.1:4567", Version: "0.6.2", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if err := writeRecord(path, want); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	got, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.PID != want.PID || got.StartTicks != want.StartTicks || strings.Join(got.Argv, " ") != "/usr/bin/node main.js" || !got.Started.Equal(want.Started) {
		t.Errorf("read back %+v, want %+v", got, want)
	}
}

func TestReadRecordErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		notExist      bool
	}{
		{name: "missing", notExist: true},
		{name: "garbage", content: "12345\n"},
		{name: "pid one", content: `{"pid":1}`},
		{name: "no pid", content: `{"service":"s3"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".pid")
			if !tt.notExist {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := readRecord(path)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, os.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, os.ErrNotExist) = %v, want %v (err %v)", got, tt.notExist, err)
			}
		})
	}
}

// statLine builds a /proc/<pid>/stat line with the given fields.
func statLine(pid int, comm string, state byte, pgrp int, start uint64) string {
	f := make([]string, 50)
	for i := range f {
		f[i] = "0"
	}
	f[0] = string(state) // field 3
	f[2] = strconv.Itoa(pgrp)
	f[19] = strconv.FormatUint(start, 10) // field 22
	return strconv.Itoa(pid) + " (" + comm + ") " + strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procInfo
		wantErr bool
	}{
		{name: "plain", line: statLine(10, "node", 'S', 10, 12345), want: procInfo{State: 'S', PGID: 10, StartTicks: 12345}},
		{name: "comm with spaces and parens", line: statLine(11, "a) (b c", 'R', 7, 1), want: procInfo{State: 'R', PGID: 7, StartTicks: 1}},
		{name: "zombie", line: statLine(12, "java", 'Z', 12, 5), want: procInfo{State: 'Z', PGID: 12, StartTicks: 5}},
		{name: "truncated", line: "13 (x) S 1 2", wantErr: true},
		{name: "no parens", line: "13 x S", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeProc writes a /proc/<pid> entry under root.
func fakeProc(t *testing.T, root string, pid int, state byte, start uint64, argv ...string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(statLine(pid, filepath.Base(argv[0]), state, pid, start)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRecord(t *testing.T) {
	root := t.TempDir()
	node := []string{"/usr/bin/node", "-r", "/x/run/loopback-preload.js", "/x/npm/node_modules/kinesis-local/main.js"}
	fakeProc(t, root, 100, 'S', 500, node...)
	fakeProc(t, root, 101, 'Z', 500, node...)
	fakeProc(t, root, 102, 'S', 777, node...)
	fakeProc(t, root, 103, 'S', 500, "/usr/bin/vim", "notes.txt")
	fakeProc(t, root, 104, 'S', 500, "/usr/lib/jvm/java-17/bin/java", "-Xms512m", "-Epath.data=/x/data/opensearch/data", "org.opensearch.bootstrap.OpenSearch")

	tests := []struct {
		name string
		rec  Record
		want procState
	}{
		{"ours", Record{PID: 100, StartTicks: 500, Argv: node}, procOurs},
		{"ours without recorded start time", Record{PID: 100, Argv: node}, procOurs},
		{"gone", Record{PID: 999, StartTicks: 500, Argv: node}, procGone},
		{"zombie", Record{PID: 101, StartTicks: 500, Argv: node}, procGone},
		{"pid reused, same program", Record{PID: 102, StartTicks: 500, Argv: node}, procOther},
		{"pid reused by another program", Record{PID: 103, StartTicks: 500, Argv: node}, procOther},
		{"exec'd program matched by marker", Record{PID: 104, StartTicks: 500, Argv: []string{"/x/opensearch/bin/opensearch"}, Marker: "-Epath.data=/x/data/opensearch/data"}, procOurs},
		{"marker of another instance", Record{PID: 104, StartTicks: 500, Marker: "-Epath.data=/y/data/opensearch/data"}, procOther},
		{"empty record never matches", Record{PID: 100, StartTicks: 500}, procOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := checkRecord(root, tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("state = %v (%s), want %v", got, why, tt.want)
			}
			if got != procOurs && why == "" {
				t.Error("no reason given for a process that is not ours")
			}
		})
	}
}
