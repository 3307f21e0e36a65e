package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"crypto/tls"
	"crypto/x509"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/workload"
)

// PipelineConfig describes one end-to-end pipeline benchmark run.
type PipelineConfig struct {
	Binary     string // the leasehold executable
	Kinesis    string // endpoint URLs
	DynamoDB   string
	S3         string
	OpenSearch string
	// Search, when its URL is set, is the search backend instead of
	// OpenSearch (Elasticsearch: `bench pipeline --backend elasticsearch`).
	Search   SearchBackend
	Workers  int           // default 2
	Shards   int           // default 4
	Rate     int           // records per second offered; default 200
	Duration time.Duration // how long to produce; default 30s
	Progress io.Writer
	// Env is added to every worker process's environment, after this
	// process's own: the local stack's region and test credentials when
	// the environment has none.
	Env []string
}

// SearchBackend is the cluster the pipeline's search sink writes to and
// the benchmark polls.
type SearchBackend struct {
	Kind               string // the sink type: opensearch or elasticsearch
	URL                string
	Username, Password string
	CAFile             string // PEM CA for an https URL
}

// sinkYAML is the search sink's entry in the pipeline config.
func (b SearchBackend) sinkYAML(index string) string {
	y := fmt.Sprintf("    - type: %s\n      url: %s\n      index: %s-{yyyy.MM.dd}\n      flush_interval: 200ms\n", b.Kind, b.URL, index)
	if b.Username != "" {
		y += fmt.Sprintf("      username: %s\n      password: %s\n", b.Username, b.Password)
	}
	if b.CAFile != "" {
		y += fmt.Sprintf("      tls: {ca_file: %s}\n", b.CAFile)
	}
	return y
}

// client returns an HTTP client that trusts CAFile.
func (b SearchBackend) client() (*http.Client, error) {
	if b.CAFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(b.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", b.CAFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

func (c *PipelineConfig) defaults() {
	if c.Search.URL == "" {
		c.Search = SearchBackend{Kind: "opensearch", URL: c.OpenSearch}
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// PipelineResult holds the figures.
type PipelineResult struct {
	Workers, Shards, Rate int
	Backend               string // "OpenSearch" or "Elasticsearch"
	Records               int
	Latency               []time.Duration // put acknowledged → searchable in OpenSearch, per sampled record
	CPUSeconds            float64         // user+system of all worker processes
	PeakRSS               int64           // max VmHWM over worker processes, bytes
	Elapsed               time.Duration
	// GetRecords calls per shard per second while records were produced,
	// the most one shard got in any second, and calls the proxy refused.
	CallsPerShardSecond  float64
	PeakCalls, Throttled int
}

// Quantile returns the q-quantile of the sampled latencies.
func (r PipelineResult) Quantile(q float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.Latency...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// RunPipeline produces generated CloudFront lines at a steady rate into a
// fresh stream, runs worker processes with the full pipeline (parse →
// useragent → anonymize_ip → asset_id → OpenSearch + S3 + DynamoDB), and
// measures each record's time from PutRecords acknowledged to searchable,
// the workers' CPU time and their peak RSS.
func RunPipeline(ctx context.Context, kc *kinesis.Client, s3c *s3.Client, cfg PipelineConfig) (PipelineResult, error) {
	cfg.defaults()
	res := PipelineResult{Workers: cfg.Workers, Shards: cfg.Shards, Rate: cfg.Rate, Backend: productName(cfg.Search.Kind)}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	run := fmt.Sprintf("benchp-%d", time.Now().UnixNano()%1e9)
	stream, bucket, index := run, run+"-archive", run+"-events"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return res, fmt.Errorf("create stream: %w", err)
	}
	defer kc.DeleteStream(context.WithoutCancel(ctx), &kinesis.DeleteStreamInput{StreamName: &stream})
	if err := waitStream(ctx, kc, stream); err != nil {
		return res, err
	}
	// Workers read through a proxy that enforces AWS's GetRecords limits
	// and counts the calls by shard.
	proxy, err := faultproxy.NewKinesisProxy(cfg.Kinesis, faultproxy.AWSKinesisLimits())
	if err != nil {
		return res, err
	}
	defer proxy.Close()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		return res, fmt.Errorf("create bucket: %w", err)
	}
	dir, err := os.MkdirTemp("", "leasehold-benchp")
	if err != nil {
		return res, err
	}
	if os.Getenv("LEASEHOLD_BENCH_KEEP_DIR") == "" {
		defer os.RemoveAll(dir)
	} else {
		say("keeping %s", dir)
	}
	conf := filepath.Join(dir, "leasehold.yaml")
	yaml := fmt.Sprintf(`stream: {name: %s}
lease: {table: %s-leases}
worker: {metrics_addr: "127.0.0.1:0", checkpoint_interval: 2s}
log: {level: warn}
pipeline:
  processors:
    - type: parse
    - type: useragent
    - type: anonymize_ip
    - type: asset_id
      pattern: '^/assets/(?P<asset>[^/]+)/'
  sinks:
%s    - type: s3
      bucket: %s
      max_age: 10s
    - type: dynamodb
      table: %s-assets
  dead_letter: {type: s3, bucket: %s}
`, stream, run, cfg.Search.sinkYAML(index), bucket, run, bucket)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		return res, err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	for i := range cfg.Workers {
		cmd := exec.Command(cfg.Binary, "worker", "--config", conf, "--worker.id", fmt.Sprintf("benchp-w%d", i+1))
		cmd.Env = append(append(os.Environ(), cfg.Env...), "AWS_ENDPOINT_URL_KINESIS="+proxy.URL(), "AWS_ENDPOINT_URL_DYNAMODB="+cfg.DynamoDB, "AWS_ENDPOINT_URL_S3="+cfg.S3)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("w%d.log", i+1)))
		if err != nil {
			return res, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return res, err
		}
		procs = append(procs, cmd)
	}

	// Lines from the workload generator, one hour's worth repeated as needed.
	lines := generatedRecords(cfg.Rate * int(cfg.Duration.Seconds()))
	say("producing %d records at %d/s for %s into %d shards, %d workers", len(lines), cfg.Rate, cfg.Duration, cfg.Shards, cfg.Workers)
	// A poller looks the sampled records up while they are produced, so
	// each one's searchable time is seen within ~100 ms.
	search, err := cfg.Search.client()
	if err != nil {
		return res, fmt.Errorf("search backend: %w", err)
	}
	var mu sync.Mutex
	ackAt := map[string]time.Time{} // event id -> PutRecords acknowledged
	seen := map[string]time.Time{}
	produced := make(chan struct{})
	pollErr := make(chan error, 1)
	go func() {
		deadline := time.Time{}
		for {
			mu.Lock()
			want := make(map[string]time.Time, len(ackAt))
			for id, at := range ackAt {
				if _, ok := seen[id]; !ok {
					want[id] = at
				}
			}
			mu.Unlock()
			select {
			case <-produced:
				if deadline.IsZero() {
					deadline = time.Now().Add(3 * time.Minute)
				}
				if len(want) == 0 {
					pollErr <- nil
					return
				}
				if time.Now().After(deadline) {
					pollErr <- fmt.Errorf("%d sampled records never became searchable", len(want))
					return
				}
			default:
			}
			found, err := searchIDs(search, cfg.Search, index, want)
			if err != nil {
				pollErr <- err
				return
			}
			now := time.Now()
			mu.Lock()
			for _, id := range found {
				seen[id] = now
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	perTick := max(1, cfg.Rate/10)
	for i := 0; i < len(lines); i += perTick {
		batch := lines[i:min(i+perTick, len(lines))]
		if err := putBatch(ctx, kc, stream, batch); err != nil {
			return res, err
		}
		now := time.Now()
		mu.Lock()
		for _, l := range batch {
			if l.sample {
				ackAt[l.id] = now
			}
		}
		mu.Unlock()
		if d := time.Until(start.Add(time.Duration(i/perTick+1) * 100 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	res.Records = len(lines)
	producedAt := time.Now()
	producedFor := producedAt.Sub(start)
	say("waiting until every sampled record is searchable")
	close(produced)
	if err := <-pollErr; err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	type lat struct {
		ack time.Time
		d   time.Duration
	}
	var byAck []lat
	for id, at := range seen {
		res.Latency = append(res.Latency, at.Sub(ackAt[id]))
		byAck = append(byAck, lat{ackAt[id], at.Sub(ackAt[id])})
	}
	sort.Slice(byAck, func(i, j int) bool { return byAck[i].ack.Before(byAck[j].ack) })
	for i := 0; i < len(byAck); i += max(1, len(byAck)/10) {
		say("  record put at +%s searchable after %s", byAck[i].ack.Sub(start).Round(100*time.Millisecond), byAck[i].d.Round(10*time.Millisecond))
	}
	res.Elapsed = time.Since(start)
	var calls int
	for shard, cs := range proxy.Calls() {
		if shard == "" {
			continue
		}
		for _, c := range cs {
			if !c.At.Before(start) && c.At.Before(producedAt) {
				calls++
			}
		}
		res.PeakCalls = max(res.PeakCalls, peakPerSecond(cs, time.Time{}, time.Now()))
	}
	res.CallsPerShardSecond = float64(calls) / float64(cfg.Shards) / producedFor.Seconds()
	res.Throttled = proxy.Throttled()
	for _, p := range procs {
		cpu, rss := procUsage(p.Process.Pid)
		res.CPUSeconds += cpu
		res.PeakRSS = max(res.PeakRSS, rss)
	}
	return res, nil
}

type genLine struct {
	data   []byte
	id     string
	sample bool
}

// generatedRecords returns n CloudFront record payloads from the workload
// generator; every 10th is sampled for latency.
func generatedRecords(n int) []genLine {
	var out []genLine
	for seed := uint64(1); len(out) < n; seed++ {
		w := workload.New(workload.Config{Seed: seed, Hours: 1, PeakHour: n, Assets: 500, Tenants: 10, Start: time.Now().UTC().Truncate(time.Hour)})
		_, _ = w.WriteLogs(func(key string) (io.WriteCloser, error) { return &collect{out: &out, limit: n}, nil })
	}
	for i := range out {
		out[i].sample = i%10 == 0
	}
	return out
}

type collect struct {
	buf   strings.Builder
	out   *[]genLine
	limit int
}

func (c *collect) Write(p []byte) (int, error) { return c.buf.Write(p) }
func (c *collect) Close() error {
	lines, err := gunzipLines([]byte(c.buf.String()))
	if err != nil {
		return err
	}
	for _, l := range lines {
		if len(*c.out) >= c.limit || strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		cols := strings.Split(l, "\t")
		*c.out = append(*c.out, genLine{data: []byte(l), id: cols[14]})
	}
	return nil
}

func putBatch(ctx context.Context, kc *kinesis.Client, stream string, batch []genLine) error {
	var entries []types.PutRecordsRequestEntry
	for _, l := range batch {
		h := sha1.Sum(l.data)
		entries = append(entries, types.PutRecordsRequestEntry{Data: l.data, PartitionKey: aws.String(hex.EncodeToString(h[:8]))})
	}
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt > 20 {
			return fmt.Errorf("PutRecords keeps failing")
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var retry []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				retry = append(retry, entries[i])
			}
		}
		entries = retry
	}
	return nil
}

// searchIDs returns which of the wanted ids are searchable.
func searchIDs(c *http.Client, b SearchBackend, index string, want map[string]time.Time) ([]string, error) {
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 500 {
		ids = ids[:500]
	}
	q, _ := json.Marshal(map[string]any{"size": len(ids), "_source": false, "query": map[string]any{"ids": map[string]any{"values": ids}}})
	req, err := http.NewRequest(http.MethodPost, b.URL+"/"+index+"-*/_search", strings.NewReader(string(q)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if b.Username != "" {
		req.SetBasicAuth(b.Username, b.Password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // no index yet
	}
	var v struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range v.Hits.Hits {
		out = append(out, h.ID)
	}
	return out, nil
}

// procUsage reads a live process's CPU seconds (user+system) and peak RSS.
func procUsage(pid int) (cpuSeconds float64, peakRSS int64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+2:])
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpuSeconds = (ut + st) / 100 // USER_HZ
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				peakRSS = kb * 1024
			}
		}
	}
	return cpuSeconds, peakRSS
}

// procSwitches is a live process's context switches so far, summed over
// its threads (/proc/<pid>/task/*/status): voluntary ones are a thread
// going to sleep, i.e. one per wake-up; involuntary ones are preemptions.
// Threads that exited are not counted (Go's threads rarely exit).
func procSwitches(pid int) (voluntary, involuntary int64) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				voluntary += n
			} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				involuntary += n
			}
		}
	}
	return voluntary, involuntary
}

// PrintPipeline renders the result as a Markdown table.
func PrintPipeline(w io.Writer, r PipelineResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.Debug)
	fmt.Fprintf(tw, "| figure\t measured\t\n|---\t---\t\n")
	fmt.Fprintf(tw, "| end-to-end latency, PutRecords acknowledged → searchable in %s, p50\t %.2f s\t\n", r.Backend, r.Quantile(0.5).Seconds())
	fmt.Fprintf(tw, "| … p99\t %.2f s\t\n", r.Quantile(0.99).Seconds())
	fmt.Fprintf(tw, "| GetRecords calls per shard-second while producing; most to one shard in any second; throttled\t %.2f; %d; %d\t\n", r.CallsPerShardSecond, r.PeakCalls, r.Throttled)
	fmt.Fprintf(tw, "| worker CPU seconds per 1,000 records (all workers, all sinks)\t %.3f\t\n", r.CPUSeconds/float64(r.Records)*1000)
	fmt.Fprintf(tw, "| peak RSS of a worker\t %.0f MiB\t\n", float64(r.PeakRSS)/(1<<20))
	tw.Flush()
	fmt.Fprintf(w, "\n%d CloudFront records at %d/s into %d shards, %d workers, sinks %s + S3 + DynamoDB; %d sampled for latency.\n", r.Records, r.Rate, r.Shards, r.Workers, r.Backend, len(r.Latency))
}

func productName(kind string) string {
	if kind == "elasticsearch" {
		return "Elasticsearch"
	}
	return "OpenSearch"
}

func gunzipLines(b []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(raw), "\n"), nil
}
