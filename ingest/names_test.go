package ingest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/leasehold/leasehold/ingest"
)

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		in          string
		allowEmpty  bool
		bucket, key string
		bad         bool
	}{
		{in: "s3://logs/cf/E1.2024-05-01-10.a.gz", bucket: "logs", key: "cf/E1.2024-05-01-10.a.gz"},
		{in: "s3://logs/cf/", allowEmpty: true, bucket: "logs", key: "cf/"},
		{in: "s3://logs", allowEmpty: true, bucket: "logs"},
		{in: "s3://logs", bad: true},
		{in: "s3:///key", bad: true},
		{in: "https://logs.s3.amazonaws.com/key", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b, k, err := ingest.ParseS3URL(tt.in, tt.allowEmpty)
			if tt.bad {
				if !errors.Is(err, ingest.ErrBadURL) {
					t.Fatalf("error %v, want ErrBadURL", err)
				}
				return
			}
			if err != nil || b != tt.bucket || k != tt.key {
				t.Fatalf("(%q, %q, %v), want (%q, %q)", b, k, err, tt.bucket, tt.key)
			}
		})
	}
}

func TestTimeRangeFromNames(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := ingest.ParseTime(s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	may := ingest.TimeRange{From: at("2024-05-01T10"), To: at("2024-05-02")}
	tests := []struct {
		name string
		r    ingest.TimeRange
		key  string
		want bool
	}{
		{"first hour", may, "cf/E1ABC.2024-05-01-10.8e1f.gz", true},
		{"last hour", may, "E1ABC.2024-05-01-23.8e1f.gz", true},
		{"hour before", may, "cf/E1ABC.2024-05-01-09.8e1f.gz", false},
		{"to is exclusive", may, "cf/E1ABC.2024-05-02-00.8e1f.gz", false},
		{"from mid-hour includes that hour", ingest.TimeRange{From: at("2024-05-01T10:30:00Z")}, "E1.2024-05-01-10.x.gz", true},
		{"not a log name, bounded", may, "cf/README.txt", false},
		{"bad date, bounded", may, "cf/E1.2024-13-01-10.x.gz", false},
		{"not a log name, unbounded", ingest.TimeRange{}, "cf/README.txt", true},
		{"open end", ingest.TimeRange{From: at("2024-05-01")}, "E1.2030-01-01-00.x.gz", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Contains(tt.key); got != tt.want {
				t.Fatalf("Contains(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
	if h, ok := ingest.LogHour("a/b/E2EXAMPLE.2019-12-04-21.abcdef.gz"); !ok || !h.Equal(time.Date(2019, 12, 4, 21, 0, 0, 0, time.UTC)) {
		t.Fatalf("LogHour = %v, %v", h, ok)
	}
	if _, err := ingest.ParseTime("yesterday"); err == nil {
		t.Fatal("ParseTime accepted yesterday")
	}
}
