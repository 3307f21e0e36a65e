package localrun_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/processors/localrun"
	"github.com/leasehold/leasehold/processors/transform"
)

// The repository's CloudFront fixtures.
var (
	mixed33   = filepath.Join("..", "..", "cloudfront", "testdata", "E1EXAMPLE.2019-12-04-21.mixed-33-fields.log")
	variants  = filepath.Join("..", "..", "cloudfront", "testdata", "variants")
	realtime  = filepath.Join(variants, "realtime-40-fields.record")
	rtFields  = filepath.Join(variants, "realtime-40-fields.fields")
	rtmpLog   = filepath.Join(variants, "rtmp-streaming.log")
	standard4 = filepath.Join(variants, "standard-24-fields.log")
)

// result is what a run wrote.
type result struct {
	docs   []event.Event
	stdout string
	stderr string
	sum    localrun.Summary
	err    error
}

// run runs o with the built-in types, capturing stdout and stderr; config
// is a YAML file's text whose pipeline section is used ("" for none).
func run(t *testing.T, o localrun.Options, config string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	o.Stdout, o.Stderr = &out, &errOut
	o.Registry = processors.NewRegistry()
	transform.Register(o.Registry)
	filesink.Register(o.Registry)
	deadletter.Register(o.Registry)
	if config != "" {
		var doc struct {
			Pipeline yaml.Node `yaml:"pipeline"`
		}
		if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
			t.Fatal(err)
		}
		o.Pipeline = &doc.Pipeline
	}
	sum, err := localrun.Run(t.Context(), o)
	r := result{stdout: out.String(), stderr: errOut.String(), sum: sum, err: err}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line is not a document: %v: %s", err, sc.Text())
		}
		r.docs = append(r.docs, ev)
	}
	return r
}

// gzipFile writes a gzip copy of src into a temporary folder.
func gzipFile(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunGzipCloudFrontLog: a gzipped standard log goes through the
// default chain; the truncated last line is a dead letter with its line
// number and reason; documents say which line they came from.
func TestRunGzipCloudFrontLog(t *testing.T) {
	gz := gzipFile(t, mixed33, "E1EXAMPLE.2019-12-04-21.a1b2c3d4.gz")
	r := run(t, localrun.Options{Inputs: []string{gz}}, "")
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := r.sum
	if s.Read != 12 || s.Documents != 11 || s.Filtered != 0 || s.DeadLetters != 1 || s.OK() || len(r.docs) != 11 {
		t.Fatalf("summary %+v with %d documents; want 12 read, 11 documents, 1 dead letter", s, len(r.docs))
	}
	first := r.docs[0]
	if first.SourceRecord.ShardID != gz || first.SourceRecord.SequenceNumber != "3" || first.SourceRecord.Stream != localrun.StreamName {
		t.Fatalf("source_record %+v, want the file and line 3", first.SourceRecord)
	}
	if first.UA.Browser != "Chrome" || first.ClientIP != "89.160.20.0" {
		t.Fatalf("the default chain did not run useragent and anonymize_ip: %+v %s", first.UA, first.ClientIP)
	}
	if !strings.Contains(r.stderr, "dead letter: "+gz+":14 [parse] cloudfront: wrong field count: has 31 fields") {
		t.Fatalf("stderr lacks the dead letter:\n%s", r.stderr)
	}
	if got := s.String(); got != "pipeline run: 1 input, 12 read, 11 documents, 0 filtered, 1 dead letter" {
		t.Fatalf("summary line %q", got)
	}
}

// TestRunPlainFilesWithAndWithoutHeader: a plain file with a #Fields
// header and one of bare 33-field lines (a standard layout, known by its
// field count) are both read.
func TestRunPlainFilesWithAndWithoutHeader(t *testing.T) {
	raw, err := os.ReadFile(mixed33)
	if err != nil {
		t.Fatal(err)
	}
	var bare []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && strings.Count(l, "\t") == 32 {
			bare = append(bare, l)
		}
	}
	headerless := filepath.Join(t.TempDir(), "headerless.log")
	if err := os.WriteFile(headerless, []byte(strings.Join(bare, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, localrun.Options{Inputs: []string{standard4, headerless}}, "")
	if r.err != nil || !r.sum.OK() {
		t.Fatalf("run: %v, %+v\n%s", r.err, r.sum, r.stderr)
	}
	if len(r.docs) != 2+len(bare) || r.sum.Inputs != 2 || r.sum.Read != int64(2+len(bare)) {
		t.Fatalf("%d documents, summary %+v; want %d", len(r.docs), r.sum, 2+len(bare))
	}
	if r.docs[0].UA.Browser != "Safari" || r.docs[0].UA.Device != event.DeviceMobile {
		t.Fatalf("24-field line: ua %+v", r.docs[0].UA)
	}
	if r.docs[2].SourceRecord.ShardID != headerless || r.docs[2].SourceRecord.SequenceNumber != "1" {
		t.Fatalf("headerless line: source_record %+v", r.docs[2].SourceRecord)
	}
}

// TestRunStdinAppEvents: NDJSON app events on stdin; an invalid event is a
// dead letter with the validator's reason, a blank line is skipped.
func TestRunStdinAppEvents(t *testing.T) {
	in := `{"event_id":"e1","event_type":"view","occurred_at":"2024-05-01T10:00:00+02:00","asset_id":"a1","tenant_id":"acme","client_ip":"203.0.113.77","user_agent":"NetSuite/2019.2(SuiteScript)"}

{"event_id":"e2","event_type":"click","occurred_at":"2024-05-01T10:00:01Z","asset_id":"a1","tenant_id":"acme"}
{"event_id":"e3","event_type":"download","occurred_at":"2024-05-01T10:00:02Z","asset_id":"a2","tenant_id":"acme"}
`
	r := run(t, localrun.Options{Stdin: strings.NewReader(in)}, "")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum.Read != 3 || r.sum.Documents != 2 || r.sum.DeadLetters != 1 || len(r.docs) != 2 {
		t.Fatalf("summary %+v, %d documents", r.sum, len(r.docs))
	}
	e1 := r.docs[0]
	if e1.EventID != "e1" || e1.ClientIP != "203.0.113.0" || !e1.Bot || e1.SourceRecord.ShardID != "stdin" || e1.SourceRecord.SequenceNumber != "1" {
		t.Fatalf("first document %+v", e1)
	}
	if !strings.Contains(r.stderr, `dead letter: stdin:3 [parse] appevent: invalid event: event_type: "click" is not one of`) {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// TestRunRealtime: real-time records with their field list given as a
// flag, or in the parse stage of a config, give the same documents.
func TestRunRealtime(t *testing.T) {
	names, err := os.ReadFile(rtFields)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(names))
	byFlag := run(t, localrun.Options{Inputs: []string{realtime}, RealtimeFields: fields}, "")
	if byFlag.err != nil || len(byFlag.docs) != 1 || !byFlag.sum.OK() {
		t.Fatalf("by flag: %v, %+v\n%s", byFlag.err, byFlag.sum, byFlag.stderr)
	}
	ev := byFlag.docs[0]
	if ev.Host != "test.cloudfront.net" || ev.URI != "/i" || ev.UA.Browser != "Firefox" || ev.TimeToFirstByteMS == nil || *ev.TimeToFirstByteMS != 42 {
		t.Fatalf("real-time document %+v", ev)
	}
	config := "pipeline:\n  processors:\n    - type: parse\n      format: cloudfront_realtime\n      fields: [" + strings.Join(fields, ", ") + "]\n    - type: useragent\n    - type: anonymize_ip\n"
	byConfig := run(t, localrun.Options{Inputs: []string{realtime}}, config)
	if byConfig.err != nil || byConfig.stdout != byFlag.stdout {
		t.Fatalf("by config: %v\n%s\nby flag:\n%s", byConfig.err, byConfig.stdout, byFlag.stdout)
	}
}

// TestRunBadLines: a line too long for a record is dead-lettered at stage
// read, and reading goes on after it.
func TestRunBadLines(t *testing.T) {
	long := `{"event_id":"` + strings.Repeat("x", 2<<20) + `"}`
	in := long + "\n" + `{"event_id":"e1","event_type":"view","occurred_at":"2024-05-01T10:00:00Z","asset_id":"a1","tenant_id":"acme"}` + "\n"
	dl := filepath.Join(t.TempDir(), "dead.ndjson")
	r := run(t, localrun.Options{Stdin: strings.NewReader(in), Format: transform.FormatApp, DeadLetterPath: dl}, "")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum.Read != 2 || r.sum.Documents != 1 || r.sum.DeadLetters != 1 {
		t.Fatalf("summary %+v", r.sum)
	}
	b, err := os.ReadFile(dl)
	if err != nil {
		t.Fatal(err)
	}
	var line deadletter.Line
	if err := json.Unmarshal(bytes.TrimSpace(b), &line); err != nil {
		t.Fatalf("dead-letter file: %v: %.200s", err, b)
	}
	if line.Stage != "read" || !strings.Contains(line.Error, "line too long") || line.SequenceNumber != "1" || len(line.Data) == 0 {
		t.Fatalf("dead letter %+v", line)
	}
	if strings.Contains(r.stderr, "dead letter:") {
		t.Fatal("dead letters went to stderr although a file was given")
	}
}

// TestRunFilterAndSinks: a config's chain with a filter counts what it
// drops; --sinks writes to the config's sinks (here a file) instead of
// stdout, within the config's event-time window.
func TestRunFilterAndSinks(t *testing.T) {
	out := filepath.Join(t.TempDir(), "docs.ndjson")
	config := `
pipeline:
  processors:
    - type: parse
    - type: useragent
    - type: filter
      drop:
        - {field: bot, equals: true}
  sinks:
    - type: file
      path: ` + out + `
  dead_letter:
    type: s3
    bucket: never-used
`
	r := run(t, localrun.Options{Inputs: []string{mixed33}}, config)
	if r.err != nil {
		t.Fatal(r.err)
	}
	// 12 lines: 1 truncated, 4 robots (curl, 3 headless Chrome), 7 people.
	if r.sum.Read != 12 || r.sum.Documents != 7 || r.sum.Filtered != 4 || r.sum.DeadLetters != 1 || len(r.docs) != 7 {
		t.Fatalf("stdout: summary %+v, %d documents", r.sum, len(r.docs))
	}

	// With the sinks the event-time window applies: these 2019-2024 lines
	// are older than its default 30 days.
	r = run(t, localrun.Options{Inputs: []string{mixed33}, UseSinks: true}, config)
	if r.err != nil || r.sum.Documents != 0 || r.sum.DeadLetters != 8 || !strings.Contains(r.stderr, "[event_time] event_time 2019-12-04T21:02:31Z is outside the accepted window") {
		t.Fatalf("with sinks, default window: %v, %+v\n%s", r.err, r.sum, r.stderr)
	}
	config += "  event_time: {max_past: 36500d}\n"
	r = run(t, localrun.Options{Inputs: []string{mixed33}, UseSinks: true}, config)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stdout != "" || r.sum.Documents != 7 {
		t.Fatalf("with sinks: stdout %q, summary %+v", r.stdout, r.sum)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 7 {
		t.Fatalf("the file sink has %d lines, want 7", n)
	}
}

// TestRunInputFailures: an input that cannot be read to its end (missing,
// or an RTMP log whose header cannot be used) fails; the others are read.
func TestRunInputFailures(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.log")
	r := run(t, localrun.Options{Inputs: []string{missing, rtmpLog, standard4}}, "")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum.FailedInputs != 2 || len(r.sum.InputErrors) != 2 || len(r.docs) != 2 || r.sum.OK() {
		t.Fatalf("summary %+v, %d documents", r.sum, len(r.docs))
	}
	if !errors.Is(r.sum.InputErrors[0], os.ErrNotExist) || !strings.Contains(r.sum.InputErrors[1].Error(), "RTMP") {
		t.Fatalf("input errors %v", r.sum.InputErrors)
	}
	if got := r.sum.String(); !strings.HasPrefix(got, "pipeline run: 3 inputs (2 failed), 2 read") {
		t.Fatalf("summary line %q", got)
	}
}

// TestRunBadUsage: mistakes in the options or the pipeline section are
// ErrUsage errors (exit code 2) and nothing is read.
func TestRunBadUsage(t *testing.T) {
	tests := []struct {
		name   string
		opts   localrun.Options
		config string
		want   string
	}{
		{"unknown processor type", localrun.Options{}, "pipeline:\n  processors:\n    - type: parse\n    - type: geo_ip\n", `unknown processor type "geo_ip"`},
		{"bad processor option", localrun.Options{}, "pipeline:\n  processors:\n    - type: useragent\n      cache_size: -1\n", "cache_size"},
		{"format and a config chain", localrun.Options{Format: "app"}, "pipeline:\n  processors:\n    - type: parse\n", "parse stage"},
		{"sinks without sinks", localrun.Options{UseSinks: true}, "", "no sinks"},
		{"unknown real-time field", localrun.Options{RealtimeFields: []string{"timestamp", "cs(Host)"}}, "", `"cs(Host)"`},
		{"real-time fields with another format", localrun.Options{Format: "app", RealtimeFields: []string{"timestamp"}}, "", "--realtime-fields"},
		{"unknown format", localrun.Options{Format: "w3c"}, "", `unknown format "w3c"`},
		{"dead-letter file in a missing folder", localrun.Options{DeadLetterPath: "/nonexistent-folder/dead.ndjson"}, "", "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Inputs = []string{mixed33}
			r := run(t, tc.opts, tc.config)
			if !errors.Is(r.err, localrun.ErrUsage) || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUsage containing %q", r.err, tc.want)
			}
			if r.stdout != "" || r.sum.Read != 0 {
				t.Fatalf("something was read: %+v %q", r.sum, r.stdout)
			}
		})
	}
}

// mustYAML parses a YAML document into a node.
func mustYAML(s string) *yaml.Node {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(s), &n); err != nil {
		panic(err)
	}
	return n.Content[0]
}
