package limits_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/limits"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/worker"
)

func TestLeaseCheck(t *testing.T) {
	good := limits.Lease{Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second, ScanInterval: time.Minute}
	tests := []struct {
		name string
		edit func(*limits.Lease)
		want []string
	}{
		{"good", func(*limits.Lease) {}, nil},
		{"margin at the duration", func(l *limits.Lease) { l.SafetyMargin = l.Duration }, []string{
			"lease.safety_margin: 10s must be above 0 and below lease.duration (10s)",
			"lease.renew_interval: 4s must be above 0 and at most half of lease.duration minus lease.safety_margin (0s), so one lost heartbeat does not cost the leases"}},
		{"renew too slow", func(l *limits.Lease) { l.RenewInterval = 5 * time.Second }, []string{
			"lease.renew_interval: 5s must be above 0 and at most half of lease.duration minus lease.safety_margin (4s), so one lost heartbeat does not cost the leases"}},
		{"no take interval", func(l *limits.Lease) { l.TakeInterval = 0 }, []string{"lease.take_interval: must be above 0"}},
		{"scan faster than take", func(l *limits.Lease) { l.ScanInterval = 500 * time.Millisecond }, []string{
			"lease.scan_interval: 500ms must be at least lease.take_interval (1s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := good
			tt.edit(&l)
			checkErrs(t, l.Check(), tt.want)
		})
	}
}

func TestReadCheck(t *testing.T) {
	good := limits.Read{MaxRecords: 10000, MaxReadRate: 2, IdleTime: time.Second, BehindThreshold: time.Second, ReadBytesPerSecond: 2_000_000, ShutdownGrace: 20 * time.Second}
	tests := []struct {
		name string
		edit func(*limits.Read)
		want []string
	}{
		{"good", func(*limits.Read) {}, nil},
		{"max records", func(r *limits.Read) { r.MaxRecords = 0 }, []string{"worker.max_records: 0 is out of range; Kinesis allows 1 to 10000"}},
		{"read rate above Kinesis", func(r *limits.Read) { r.MaxReadRate = 6 }, []string{
			"worker.max_read_rate: 6 is out of range; use above 0 and at most 5 GetRecords calls per second per shard, the Kinesis limit shared by every consumer of the shard (default 2)"}},
		{"idle under the ceiling", func(r *limits.Read) { r.IdleTime = 250 * time.Millisecond }, []string{
			"worker.idle_time: 250ms is shorter than worker.max_read_rate allows (2 calls per second: at least 500ms; default 1s)"}},
		{"negative behind", func(r *limits.Read) { r.BehindThreshold = -1 }, []string{"worker.behind_threshold: must not be negative"}},
		{"bytes above Kinesis", func(r *limits.Read) { r.ReadBytesPerSecond = 3 << 20 }, []string{
			"worker.read_bytes_per_second: 3145728 is out of range; use 100000 to 2097152 (2 MiB, the Kinesis limit per shard; default 2000000)"}},
		{"short grace", func(r *limits.Read) { r.ShutdownGrace = time.Millisecond }, []string{"worker.shutdown_grace: 1ms is too short; use at least 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			checkErrs(t, r.Check(), tt.want)
		})
	}
}

func checkErrs(t *testing.T, errs []error, want []string) {
	t.Helper()
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestOneRuleThreeEntries: the YAML config, lease.Config and worker.Config
// give the same message for the same mistake, because the rule lives here
// once.
func TestOneRuleThreeEntries(t *testing.T) {
	const renew = "lease.renew_interval: 5s must be above 0 and at most half of lease.duration minus lease.safety_margin (4s)"
	const rate = "worker.max_read_rate: 6 is out of range"
	c := config.Default()
	c.Stream.Name, c.Lease.Table = "s", "t"
	c.Lease.Duration, c.Lease.SafetyMargin, c.Lease.RenewInterval = 10*time.Second, 2*time.Second, 5*time.Second
	c.Worker.MaxReadRate = 6
	lc := lease.Config{WorkerID: "w", Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 5 * time.Second}
	wc := worker.Config{StreamName: "s", MaxReadRate: 6, Lease: lc}
	for name, err := range map[string]error{"config": c.Validate(), "lease": lc.Validate(), "worker": wc.Validate()} {
		want := []string{renew}
		if name != "lease" {
			want = append(want, rate)
		}
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want one containing %q", name, err, w)
			}
		}
	}
}
