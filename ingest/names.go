package ingest

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// ObjectRef names one S3 object to ingest.
type ObjectRef struct {
	Bucket, Key string // where the object is
	// ETag, when known (from a listing or an S3 event), lets the manifest be
	// checked before the object is read, and makes GetObject require it
	// (If-Match) so the progress recorded belongs to the object read.
	ETag string
	// Size in bytes, when known; only for progress and ETA.
	Size int64
}

// URL returns "s3://bucket/key", the object's name in the manifest and in
// errors.
func (o ObjectRef) URL() string { return "s3://" + o.Bucket + "/" + o.Key }

// ParseS3URL splits "s3://bucket/key-or-prefix". The key may be empty
// (a whole bucket) when allowEmptyKey is set. The error wraps ErrBadURL.
func ParseS3URL(raw string, allowEmptyKey bool) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(raw, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%w: %q does not start with s3://", ErrBadURL, raw)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	switch {
	case bucket == "":
		return "", "", fmt.Errorf("%w: %q has no bucket", ErrBadURL, raw)
	case key == "" && !allowEmptyKey:
		return "", "", fmt.Errorf("%w: %q has no object key", ErrBadURL, raw)
	}
	return bucket, key, nil
}

// LogHour returns the hour in a CloudFront standard-log object name,
// "<prefix>/<distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz" (UTC), and
// whether the name has that form.
func LogHour(key string) (time.Time, bool) {
	parts := strings.SplitN(path.Base(key), ".", 3)
	if len(parts) < 3 || parts[0] == "" {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02-15", parts[1])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// TimeRange selects log files by the hour in their names: From inclusive,
// To exclusive; a zero bound is open.
type TimeRange struct {
	From, To time.Time // UTC; zero: no bound
}

// IsZero reports whether the range selects every file, names or not.
func (r TimeRange) IsZero() bool { return r.From.IsZero() && r.To.IsZero() }

// Contains reports whether the file key belongs to the range. The file of
// hour H holds requests that ended from H:00 to H:59, so it is in the
// range when that hour overlaps [From, To). With a bound set, a key that
// is not a CloudFront log name is not contained; with none, every key is.
func (r TimeRange) Contains(key string) bool {
	if r.IsZero() {
		return true
	}
	h, ok := LogHour(key)
	if !ok {
		return false
	}
	if !r.From.IsZero() && !h.Add(time.Hour).After(r.From) {
		return false
	}
	if !r.To.IsZero() && !h.Before(r.To) {
		return false
	}
	return true
}

// ParseTime parses a --from/--to value: RFC 3339 ("2024-05-01T10:00:00Z"),
// a date and hour ("2024-05-01T10", "2024-05-01-10", UTC) or a date
// ("2024-05-01", UTC midnight).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15", "2006-01-02-15", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("ingest: %q is not a time; use RFC 3339 (2024-05-01T10:00:00Z), 2024-05-01T10 or 2024-05-01", s)
}
