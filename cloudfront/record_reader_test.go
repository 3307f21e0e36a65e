package cloudfront_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/cloudfront"
)

// ingestFile is a 33-field log file: headers and n lines with request ids
// id-0, id-1, ...
func ingestFile(n int) string {
	var b strings.Builder
	b.WriteString("#Version: 1.0\n#Fields: " + header33 + "\n")
	for i := range n {
		b.WriteString(strings.Replace(line33, "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", fmt.Sprintf("id-%d", i), 1) + "\n")
	}
	return b.String()
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// failAfter returns data's first n bytes, then err.
type failAfter struct {
	r   io.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// readRecords drains rr: the partition keys of the records and the final error.
func readRecords(t *testing.T, rr *cloudfront.RecordReader) (keys []string, lineErrs int, err error) {
	t.Helper()
	for {
		rec, err := rr.Next()
		var le *cloudfront.LineError
		switch {
		case errors.Is(err, io.EOF):
			return keys, lineErrs, nil
		case errors.As(err, &le):
			lineErrs++
			continue
		case err != nil:
			return keys, lineErrs, err
		}
		keys = append(keys, rec.PartitionKey)
	}
}

func TestRecordReaderStreams(t *testing.T) {
	const n = 2000 // ~700 KB: more than the reader's and the guard's buffers
	file := ingestFile(n)
	gzipped := gz(file)
	// Two members split in the middle of a line: the second one ends it.
	twoMembers := append(gz(file[:strings.Index(file, "id-1000\t")-200]), gz(file[strings.Index(file, "id-1000\t")-200:])...)
	cut := gzipped[:len(gzipped)/2]
	flipped := append([]byte(nil), gzipped...)
	flipped[len(flipped)-6] ^= 0xff // inside the CRC-32/size trailer

	tests := []struct {
		name      string
		input     io.Reader
		comp      cloudfront.Compression
		wantKeys  int   // records before the end or the error
		wantErr   error // nil, cloudfront.ErrCorrupt or a source error
		wantLines int   // Line() at the end
	}{
		{name: "gzip", input: bytes.NewReader(gzipped), wantKeys: n, wantLines: n + 2},
		{name: "gzip required", input: bytes.NewReader(gzipped), comp: cloudfront.Gzip, wantKeys: n, wantLines: n + 2},
		{name: "plain", input: strings.NewReader(file), wantKeys: n, wantLines: n + 2},
		{name: "plain, no final newline", input: strings.NewReader(strings.TrimSuffix(file, "\n")), wantKeys: n, wantLines: n + 2},
		{name: "two gzip members", input: bytes.NewReader(twoMembers), comp: cloudfront.Gzip, wantKeys: n, wantLines: n + 2},
		{name: "empty object", input: strings.NewReader(""), comp: cloudfront.Gzip},
		{name: "not gzip", input: strings.NewReader(file), comp: cloudfront.Gzip, wantErr: cloudfront.ErrCorrupt},
		{name: "truncated gzip", input: bytes.NewReader(cut), wantKeys: -1, wantErr: cloudfront.ErrCorrupt},
		{name: "bad checksum", input: bytes.NewReader(flipped), wantKeys: n, wantErr: cloudfront.ErrCorrupt, wantLines: n + 2},
		{name: "connection reset", input: &failAfter{r: bytes.NewReader(gzipped[:len(gzipped)/2]), err: io.ErrClosedPipe}, wantKeys: -1, wantErr: io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := cloudfront.NewRecordReader(tt.input, cloudfront.WithCompression(tt.comp))
			keys, _, err := readRecords(t, rr)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == io.ErrClosedPipe && errors.Is(err, cloudfront.ErrCorrupt) {
				t.Fatalf("a cut connection reported as corrupt data: %v", err)
			}
			if tt.wantKeys >= 0 && len(keys) != tt.wantKeys {
				t.Fatalf("%d records, want %d", len(keys), tt.wantKeys)
			}
			// Every record is a whole line, in order, even when the
			// stream broke off mid-line.
			for i, k := range keys {
				if want := fmt.Sprintf("id-%d", i); k != want {
					t.Fatalf("record %d has key %q, want %q (a partial or missing line)", i, k, want)
				}
			}
			if tt.wantKeys < 0 {
				if len(keys) == 0 || len(keys) >= n {
					t.Fatalf("%d records before the error, want some but not all", len(keys))
				}
				if rr.Line() != len(keys)+2 {
					t.Fatalf("Line() = %d after %d records, want the line reached (%d)", rr.Line(), len(keys), len(keys)+2)
				}
				if rr.DroppedBytes() == 0 {
					t.Fatal("no partial line dropped at a mid-stream break")
				}
			} else if rr.Line() != tt.wantLines {
				t.Fatalf("Line() = %d, want %d", rr.Line(), tt.wantLines)
			}
			if _, err2 := rr.Next(); !errors.Is(err2, io.EOF) && err2 != err && !errors.Is(err2, tt.wantErr) {
				t.Fatalf("error not sticky: %v then %v", err, err2)
			}
		})
	}
}

func TestRecordReaderRecords(t *testing.T) {
	custom := "#Fields: time date x-edge-request-id cs-uri-stem\n21:02:31\t2019-12-04\treq-custom\t/a\n"
	noID := "#Fields: date time cs-uri-stem\n2019-12-04\t21:02:31\t/a\n"
	dashID := strings.Replace(line33, "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", "-", 1)
	truncated := line33[:strings.LastIndex(line33, "\t")]
	tests := []struct {
		name          string
		input         string
		wantKey       string // "" checks a hash key
		wantData      string
		wantMalformed bool
	}{
		{name: "standard line keyed by request id", input: "#Fields: " + header33 + "\n" + line33 + "\n",
			wantKey: "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", wantData: line33},
		{name: "no header: layout by field count", input: line33 + "\r\n",
			wantKey: "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", wantData: line33},
		{name: "custom layout carries its header", input: custom, wantKey: "req-custom",
			wantData: "#Fields: time date x-edge-request-id cs-uri-stem\n21:02:31\t2019-12-04\treq-custom\t/a"},
		{name: "no request id column: hash", input: noID, wantData: "#Fields: date time cs-uri-stem\n2019-12-04\t21:02:31\t/a"},
		{name: "empty request id: hash", input: dashID + "\n", wantData: dashID},
		{name: "truncated line is sent, flagged", input: "#Fields: " + header33 + "\n" + truncated + "\n",
			wantKey: "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", wantData: "#Fields: " + header33 + "\n" + truncated, wantMalformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := cloudfront.NewRecordReader(strings.NewReader(tt.input))
			rec, err := rr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Data) != tt.wantData {
				t.Fatalf("data %q, want %q", rec.Data, tt.wantData)
			}
			if rec.Malformed != tt.wantMalformed {
				t.Fatalf("malformed %v, want %v", rec.Malformed, tt.wantMalformed)
			}
			if tt.wantKey != "" && rec.PartitionKey != tt.wantKey {
				t.Fatalf("key %q, want %q", rec.PartitionKey, tt.wantKey)
			}
			if tt.wantKey == "" {
				if !strings.HasPrefix(rec.PartitionKey, "h-") {
					t.Fatalf("key %q, want a hash key", rec.PartitionKey)
				}
				again, _ := cloudfront.NewRecordReader(strings.NewReader(tt.input)).Next()
				if again.PartitionKey != rec.PartitionKey {
					t.Fatalf("hash key not deterministic: %q then %q", rec.PartitionKey, again.PartitionKey)
				}
			}
			if _, err := cloudfront.ParseRecord(rec.Data); (err != nil) != tt.wantMalformed {
				t.Fatalf("ParseRecord of the record: %v", err)
			}
			if _, err := rr.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the only line: %v, want EOF", err)
			}
		})
	}
}

func TestRecordReaderSkipsUnsendableLines(t *testing.T) {
	long := strings.Repeat("x", 3000)
	input := "#Fields: " + header33 + "\n" + line33 + "\n" + long + "\n" + line33 + "\n"
	rr := cloudfront.NewRecordReader(strings.NewReader(input), cloudfront.WithMaxLineBytes(2000))
	var lines []int
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *cloudfront.LineError
		if errors.As(err, &le) {
			if !errors.Is(err, cloudfront.ErrLineTooLong) {
				t.Fatalf("line %d: %v, want ErrLineTooLong", le.Line, err)
			}
			lines = append(lines, -le.Line)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec.Line)
	}
	// 1 header, 2 line, 3 too long, 4 line.
	if fmt.Sprint(lines) != "[2 -3 4]" {
		t.Fatalf("lines %v (negative: not sendable), want [2 -3 4]", lines)
	}
}

// TestRecordReaderStopsAtUnusableHeader: a #Fields header that cannot be
// used makes every line after it unreadable, so reading ends there with an
// error (not a *LineError to skip): a file must never end as read with its
// lines silently dropped.
func TestRecordReaderStopsAtUnusableHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"no time field", "#Fields: c-ip sc-status cs-uri-stem", cloudfront.ErrBadLayout},
		{"duplicate field", "#Fields: date time c-ip c-ip", cloudfront.ErrBadLayout},
		{"rtmp log", "#Fields: date time x-edge-location c-ip x-event sc-bytes x-cf-status x-cf-client-id cs-uri-stem cs-uri-query c-referrer x-page-url c-user-agent x-sname x-sname-query x-file-ext x-sid", cloudfront.ErrStreamingLog},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := "#Version: 1.0\n#Fields: " + header33 + "\n" + line33 + "\n" + tc.header + "\n" + line33 + "\n" + line33 + "\n"
			rr := cloudfront.NewRecordReader(strings.NewReader(input))
			rec, err := rr.Next()
			if err != nil || rec.Line != 3 {
				t.Fatalf("first record: line %d, %v", rec.Line, err)
			}
			_, err = rr.Next()
			var le *cloudfront.LineError
			if err == nil || errors.As(err, &le) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "line 4") {
				t.Fatalf("after the unusable header: %v, want a final error at line 4 wrapping %v", err, tc.want)
			}
			if _, again := rr.Next(); again == nil || again.Error() != err.Error() {
				t.Fatalf("the error is not sticky: %v", again)
			}
		})
	}
}

// The options are one type: WithLayout, which a Reader takes, applies to
// a RecordReader too, for lines before the first #Fields header.
func TestRecordReaderWithLayout(t *testing.T) {
	line := "/x\t2020-01-01\t00:00:00\n"
	for _, tt := range []struct {
		name      string
		opts      []cloudfront.Option
		malformed bool
	}{
		{"inferred: three fields fit no standard layout", nil, true},
		{"given layout", []cloudfront.Option{cloudfront.WithLayout(mustLayout(t, "cs-uri-stem date time")), cloudfront.WithCompression(cloudfront.Plain)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := cloudfront.NewRecordReader(strings.NewReader(line), tt.opts...).Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec.Malformed != tt.malformed {
				t.Fatalf("Malformed = %v, want %v", rec.Malformed, tt.malformed)
			}
		})
	}
}
