// Package demo runs leasehold end to end on the local stack with a
// realistic workload: it generates two weeks of CloudFront logs and app
// events for a media library, uploads the logs to S3, backfills them and
// produces the events through the real CLI commands, runs worker processes
// with the full pipeline, waits until everything is indexed, and reports
// what a marketing team would ask. See `leasehold demo`.
package demo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/internal/dev/workload"
)

// Names of everything the demo creates; a second run reuses them.
const (
	Stream        = "leasehold-demo"
	LeaseTable    = "leasehold-demo-leases"
	LogBucket     = "leasehold-demo-logs"
	ArchiveBucket = "leasehold-demo-archive"
	AssetTable    = "leasehold-demo-assets"
	ManifestTable = "leasehold-demo-backfill"
	IndexPrefix   = "leasehold-demo"
	logPrefix     = "cloudfront/"
)

// Config says where the local stack is and how big the workload is.
type Config struct {
	Binary                            string // the leasehold executable (workers, backfill, produce)
	Dir                               string // working folder (config, generated events, worker logs)
	Kinesis, DynamoDB, S3, OpenSearch string // endpoint URLs
	GeoIPCity, GeoIPASN               string // MaxMind DB files; no city skips the geoip stage
	GeoIPCredit                       string // where the countries come from, printed with them
	Workers                           int    // default 3
	Shards                            int    // default 4
	Seed                              uint64 // default 1
	PeakHour                          int    // requests per hour at the daily peak; default 200
	AppEvents                         int    // default 5000
	Out                               io.Writer
	Timeout                           time.Duration // for indexing to complete; default 10m
	MetricsBase                       int           // first worker's metrics port; default 9471
	KeepWorkers                       bool          // leave workers running until ctx ends
	// Env is added to every child process's environment: the local
	// stack's region and test credentials when the caller's has none.
	Env []string
}

func (c *Config) defaults() {
	if c.Workers == 0 {
		c.Workers = 3
	}
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.PeakHour == 0 {
		c.PeakHour = 200
	}
	if c.AppEvents == 0 {
		c.AppEvents = 5000
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.MetricsBase == 0 {
		c.MetricsBase = 9471
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// Run executes the demo. It returns an error if a step fails or the
// figures it checks disagree.
func Run(ctx context.Context, kc *kinesis.Client, s3c *s3.Client, db *dynamodb.Client, cfg Config) error {
	cfg.defaults()
	start := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Out, "▸ "+format+"\n", args...) }
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	weekEnd := time.Now().UTC().Truncate(24 * time.Hour)
	wl := workload.New(workload.Config{Seed: cfg.Seed, Start: weekEnd.AddDate(0, 0, -14), Hours: 14 * 24, PeakHour: cfg.PeakHour, AppEvents: cfg.AppEvents})
	say("workload: %d assets of %d customers, two weeks of CloudFront logs (%s – %s) and %d app events",
		len(wl.Assets), len(wl.Tenants), wl.Config().Start.Format("Jan 2"), weekEnd.Add(-time.Second).Format("Jan 2"), cfg.AppEvents)

	nCat, err := writeCatalog(ctx, db, wl, cfg.Dir)
	if err != nil {
		return err
	}
	say("asset catalog: %d titles, types and collections in DynamoDB table %s (and %s); the rest are new uploads the catalog does not know yet",
		nCat, CatalogTable, filepath.Join(cfg.Dir, "catalog.ndjson"))

	fresh, err := ensureStream(ctx, kc, cfg.Shards)
	if err != nil {
		return err
	}
	for _, b := range []string{LogBucket, ArchiveBucket} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil && !alreadyExists(err) {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}

	// Generate: log files to S3, app events to a local NDJSON file, and
	// the expected outcome computed by parsing what was generated.
	exp := newExpectation()
	var uploaded, bytesUp int
	files, err := wl.WriteLogs(func(key string) (io.WriteCloser, error) {
		return &upload{ctx: ctx, s3c: s3c, key: logPrefix + key, exp: exp, done: func(n int) { uploaded++; bytesUp += n }}, nil
	})
	if err != nil {
		return fmt.Errorf("generate logs: %w", err)
	}
	eventsPath := filepath.Join(cfg.Dir, "app-events.ndjson")
	var ev bytes.Buffer
	if _, err := wl.WriteAppEvents(&ev); err != nil {
		return err
	}
	if err := os.WriteFile(eventsPath, ev.Bytes(), 0o644); err != nil {
		return err
	}
	exp.addAppEvents(ev.Bytes())
	say("uploaded %d log files (%.1f MB gzipped, %d lines) to s3://%s/%s; wrote %s", uploaded, float64(bytesUp)/1e6, exp.cfLines, LogBucket, logPrefix, eventsPath)
	say("%d hourly files", len(files))

	conf := filepath.Join(cfg.Dir, "leasehold-demo.yaml")
	if err := os.WriteFile(conf, []byte(pipelineConfig(cfg)), 0o644); err != nil {
		return err
	}
	osc := osClient{base: cfg.OpenSearch, index: IndexPrefix + "-*", http: &http.Client{Timeout: 30 * time.Second}}
	if fresh {
		// The local Kinesis and DynamoDB keep nothing across a restart of
		// the stack, while OpenSearch and S3 do: outputs of an earlier run
		// belong to a stream that no longer exists. Start them afresh so
		// the figures can be checked against this run.
		say("new stream: clearing an earlier run's documents and archive")
		if err := osc.deleteIndices(ctx); err != nil {
			return err
		}
		for _, prefix := range []string{"events/", "dead-letter/"} {
			if err := deletePrefix(ctx, s3c, prefix); err != nil {
				return err
			}
		}
	}
	have, err := osc.count(ctx)
	if err != nil {
		return err
	}
	var workers []*exec.Cmd
	if have == exp.docs() {
		say("OpenSearch already holds all %d documents from an earlier run: skipping ingestion (this run is idempotent)", have)
	} else {
		say("starting %d workers (config %s)", cfg.Workers, conf)
		for i := range cfg.Workers {
			cmd, err := startProc(cfg, fmt.Sprintf("worker-%d", i+1), "worker", "--config", conf, "--worker.id", fmt.Sprintf("demo-worker-%d", i+1),
				"--worker.metrics-addr", fmt.Sprintf("127.0.0.1:%d", cfg.MetricsBase+i))
			if err != nil {
				return err
			}
			workers = append(workers, cmd)
		}
		defer stopAll(workers, cfg.KeepWorkers, ctx)

		say("backfill: %s backfill s3://%s/%s", filepath.Base(cfg.Binary), LogBucket, logPrefix)
		if err := runProc(ctx, cfg, "backfill", "backfill", "--config", conf, "s3://"+LogBucket+"/"+logPrefix); err != nil {
			return err
		}
		say("app events: %s produce --file %s --aggregate", filepath.Base(cfg.Binary), eventsPath)
		if err := runProc(ctx, cfg, "produce", "produce", "--config", conf, "--file", eventsPath, "--aggregate"); err != nil {
			return err
		}
		want := exp.docs()
		say("waiting until OpenSearch holds all %d documents", want)
		deadline := time.Now().Add(cfg.Timeout)
		last := time.Now()
		for {
			n, err := osc.count(ctx)
			if err != nil {
				return err
			}
			if n >= want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of %d documents indexed after %s; worker logs are in %s", n, want, cfg.Timeout, cfg.Dir)
			}
			if time.Since(last) >= 5*time.Second {
				say("  %d of %d indexed", n, want)
				last = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	// Let the S3 archive and DynamoDB catch up too (S3 objects roll by age).
	say("indexed; waiting for the S3 archive and DynamoDB backup to catch up")
	sum, err := waitSinks(ctx, s3c, db, exp, cfg.Timeout)
	if err != nil {
		return err
	}
	return summary(ctx, cfg, osc, exp, sum, workers, weekEnd, time.Since(start))
}

func pipelineConfig(cfg Config) string {
	geo := ""
	if cfg.GeoIPCity != "" {
		geo = fmt.Sprintf("    - type: geoip\n      city_db: %s\n", cfg.GeoIPCity)
		if cfg.GeoIPASN != "" {
			geo += fmt.Sprintf("      asn_db: %s\n", cfg.GeoIPASN)
		}
	}
	return fmt.Sprintf(`# Written by leasehold demo.
stream: {name: %s}
lease: {table: %s}
ingest: {manifest_table: %s}
worker: {checkpoint_interval: 2s}
pipeline:
  processors:
    - type: parse
    - type: useragent
%s    - type: anonymize_ip
    - type: asset_id
      pattern: '^/assets/(?P<asset>[^/]+)/'
    - type: asset_lookup
      table: `+CatalogTable+`
      refresh: 1m
  sinks:
    - type: opensearch
      url: %s
      index: %s-{yyyy.MM.dd}
    - type: s3
      bucket: %s
      prefix: events/
      max_age: 5s
    - type: dynamodb
      table: %s
  dead_letter:
    type: s3
    bucket: %s
    prefix: dead-letter/
`, Stream, LeaseTable, ManifestTable, geo, cfg.OpenSearch, IndexPrefix, ArchiveBucket, AssetTable, ArchiveBucket)
}

// ensureStream creates the demo stream if it is missing (fresh reports
// that it was) and waits until it is ACTIVE.
func ensureStream(ctx context.Context, kc *kinesis.Client, shards int) (fresh bool, err error) {
	_, err = kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(Stream), ShardCount: aws.Int32(int32(shards))})
	var inUse *ktypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return false, fmt.Errorf("create stream %s: %w", Stream, err)
	}
	fresh = err == nil
	for range 600 {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(Stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive {
			return fresh, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fresh, fmt.Errorf("stream %s never became ACTIVE", Stream)
}

// deletePrefix removes every archive object under prefix.
func deletePrefix(ctx context.Context, s3c *s3.Client, prefix string) error {
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(ArchiveBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", ArchiveBucket, prefix, err)
		}
		for _, o := range page.Contents {
			if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(ArchiveBucket), Key: o.Key}); err != nil {
				return fmt.Errorf("delete s3://%s/%s: %w", ArchiveBucket, aws.ToString(o.Key), err)
			}
		}
	}
	return nil
}

func alreadyExists(err error) bool {
	s := err.Error()
	return strings.Contains(s, "BucketAlreadyOwnedByYou") || strings.Contains(s, "BucketAlreadyExists")
}

// upload buffers one generated log file and PUTs it on Close, recording
// its lines in the expectation.
type upload struct {
	ctx  context.Context
	s3c  *s3.Client
	key  string
	buf  bytes.Buffer
	exp  *expectation
	done func(n int)
}

func (u *upload) Write(p []byte) (int, error) { return u.buf.Write(p) }
func (u *upload) Close() error {
	data := u.buf.Bytes()
	if err := u.exp.addLogFile(data); err != nil {
		return err
	}
	if _, err := u.s3c.PutObject(u.ctx, &s3.PutObjectInput{Bucket: aws.String(LogBucket), Key: aws.String(u.key), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}); err != nil {
		return fmt.Errorf("upload %s: %w", u.key, err)
	}
	u.done(len(data))
	return nil
}

// expectation is what the sinks must hold once everything is processed.
type expectation struct {
	cfLines, appEvents, bad int
	ids                     map[string]bool // day/event_id: one document each
}

func newExpectation() *expectation { return &expectation{ids: map[string]bool{}} }

func (x *expectation) docs() int    { return len(x.ids) }
func (x *expectation) records() int { return x.cfLines + x.appEvents }

func (x *expectation) addLogFile(gz []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	r := cloudfront.NewReader(zr)
	for {
		e, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			x.bad++
			continue
		}
		x.cfLines++
		x.ids[e.EventTime.UTC().Format("2006.01.02")+"/"+e.EventID] = true
	}
}

func (x *expectation) addAppEvents(ndjson []byte) {
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		e, err := appevent.Parse(sc.Bytes())
		if err != nil {
			x.bad++
			continue
		}
		x.appEvents++
		x.ids[e.EventTime.UTC().Format("2006.01.02")+"/"+e.EventID] = true
	}
}

func startProc(cfg Config, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Env = procEnv(cfg)
	logf, err := os.Create(filepath.Join(cfg.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

// runProc runs a command to completion; a non-zero exit is an error that
// points at its log.
func runProc(ctx context.Context, cfg Config, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, cfg.Binary, args...)
	cmd.Env = procEnv(cfg)
	logPath := filepath.Join(cfg.Dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed (%v); see %s", name, err, logPath)
	}
	return nil
}

func procEnv(cfg Config) []string {
	env := append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+cfg.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+cfg.DynamoDB, "AWS_ENDPOINT_URL_S3="+cfg.S3,
		"LEASEHOLD_LOG_FORMAT=json")
	return append(env, cfg.Env...)
}

func stopAll(cmds []*exec.Cmd, keep bool, ctx context.Context) {
	if keep {
		<-ctx.Done()
	}
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
}

// sinkCounts is what the archive and the backup hold.
type sinkCounts struct {
	s3Records, s3Objects, ddbItems, deadLetters int
}

func waitSinks(ctx context.Context, s3c *s3.Client, db *dynamodb.Client, exp *expectation, timeout time.Duration) (sinkCounts, error) {
	deadline := time.Now().Add(timeout)
	// Archive objects are written once (If-None-Match) and never change:
	// count each object's lines once, not on every poll.
	lines := map[string]int{}
	for {
		var c sinkCounts
		var err error
		if c.s3Records, c.s3Objects, err = countArchive(ctx, s3c, "events/", lines); err != nil {
			return c, err
		}
		if c.deadLetters, _, err = countArchive(ctx, s3c, "dead-letter/", lines); err != nil {
			return c, err
		}
		if c.ddbItems, err = countItems(ctx, db); err != nil {
			return c, err
		}
		if c.s3Records+c.deadLetters >= exp.records() && c.ddbItems > 0 || time.Now().After(deadline) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// countArchive lists prefix and adds up the lines of its objects; known
// holds line counts of objects already read, by key, and is updated.
func countArchive(ctx context.Context, s3c *s3.Client, prefix string, known map[string]int) (records, objects int, err error) {
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(ArchiveBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("list s3://%s/%s: %w", ArchiveBucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			n, ok := known[key]
			if !ok {
				if n, err = countGzipLines(ctx, s3c, key); err != nil {
					return 0, 0, err
				}
				known[key] = n
			}
			objects++
			records += n
		}
	}
	return records, objects, nil
}

func countGzipLines(ctx context.Context, s3c *s3.Client, key string) (int, error) {
	out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ArchiveBucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	zr, err := gzip.NewReader(out.Body)
	if err != nil {
		return 0, fmt.Errorf("s3://%s/%s: %w", ArchiveBucket, key, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return 0, err
	}
	return bytes.Count(b, []byte("\n")), nil
}

func countItems(ctx context.Context, db *dynamodb.Client) (int, error) {
	n := 0
	in := &dynamodb.ScanInput{TableName: aws.String(AssetTable), Select: "COUNT"}
	for {
		out, err := db.Scan(ctx, in)
		if err != nil {
			if strings.Contains(err.Error(), "ResourceNotFound") {
				return 0, nil
			}
			return 0, err
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

var recordsInRE = regexp.MustCompile(`(?m)^leasehold_records_in_total ([0-9.e+]+)$`)

func summary(ctx context.Context, cfg Config, osc osClient, exp *expectation, sum sinkCounts, workers []*exec.Cmd, weekEnd time.Time, took time.Duration) error {
	w := cfg.Out
	docs, err := osc.count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n══ leasehold demo: done in %s ══\n\n", took.Round(time.Second))
	fmt.Fprintf(w, "Events in:   %d CloudFront log lines (backfill) + %d app events (produce) = %d records\n", exp.cfLines, exp.appEvents, exp.records())
	fmt.Fprintf(w, "OpenSearch:  %d documents (one per event id and day; expected %d)\n", docs, exp.docs())
	fmt.Fprintf(w, "S3 archive:  %d records in %d objects under s3://%s/events/\n", sum.s3Records, sum.s3Objects, ArchiveBucket)
	fmt.Fprintf(w, "DynamoDB:    %d items in %s (one per asset, time and event id)\n", sum.ddbItems, AssetTable)
	fmt.Fprintf(w, "Dead letters: %d (s3://%s/dead-letter/)\n", sum.deadLetters, ArchiveBucket)
	bySource, err := osc.terms(ctx, "source", 5, time.Time{}, time.Time{}, nil, "")
	if err == nil {
		var parts []string
		for _, b := range bySource {
			parts = append(parts, fmt.Sprintf("%s %d", b.Key, b.Count))
		}
		fmt.Fprintf(w, "By source:   %s\n", strings.Join(parts, ", "))
	}
	if shards, err := osc.terms(ctx, "source_record.shard_id", 50, time.Time{}, time.Time{}, nil, ""); err == nil {
		var parts []string
		for _, b := range shards {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(b.Key, "shardId-"), b.Count))
		}
		fmt.Fprintf(w, "By shard:    %s (documents)\n", strings.Join(parts, ", "))
	}
	if len(workers) > 0 {
		var parts []string
		for i := range workers {
			n := metricValue(fmt.Sprintf("http://127.0.0.1:%d/metrics", cfg.MetricsBase+i))
			parts = append(parts, fmt.Sprintf("demo-worker-%d %s", i+1, n))
		}
		fmt.Fprintf(w, "By worker:   %s (records processed)\n", strings.Join(parts, ", "))
	}
	if err := osc.report(ctx, w, weekEnd, cfg.GeoIPCredit); err != nil {
		return err
	}
	fmt.Fprintf(w, `
Look further:
  bin/leasehold leases --lease.table %s          the lease table (shards, owners, checkpoints)
  %s/%s-*/_search?q=asset_id:...   OpenSearch
  s3://%s/events/ and s3://%s/dead-letter/   the archive (eval "$(bin/leasehold dev env)"; aws s3 ls ...)
  bin/leasehold worker --config %s   run a worker again; its metrics: http://127.0.0.1:9464/metrics
Run the demo again: it reuses everything and is idempotent. Stop the stack: make stack-down.
`, LeaseTable, cfg.OpenSearch, IndexPrefix, ArchiveBucket, ArchiveBucket, filepath.Join(cfg.Dir, "leasehold-demo.yaml"))
	if docs != exp.docs() {
		return fmt.Errorf("OpenSearch holds %d documents, expected %d", docs, exp.docs())
	}
	return nil
}

func metricValue(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := recordsInRE.FindSubmatch(b)
	if m == nil {
		return "?"
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return strconv.FormatInt(int64(f), 10)
}
