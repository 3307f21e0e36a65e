// Command kclref is the reference consumer that `leasehold bench pipeline
// --sink file --consumer` compares leasehold's workers with: the same work
// (append every record to an NDJSON file, fsync, checkpoint) done with
// github.com/vmware/vmware-go-kcl-v2 at the library's defaults, as a user
// of that library would write it.
//
// It is its own module so that the library and its dependencies stay out
// of leasehold's go.mod. Build it with `make kclref` (bin/kclref).
//
// The benchmark harness starts one process per worker and tells it, in
// the environment, what to read and where to write (see ReadsConfig in
// internal/dev/bench/reads.go):
//
//	LEASEHOLD_BENCH_STREAM      the stream
//	LEASEHOLD_BENCH_APP         the KCL application name (its lease table)
//	LEASEHOLD_BENCH_WORKER_ID   the worker id
//	LEASEHOLD_BENCH_OUT         the NDJSON file to append one line per record to
//	AWS_ENDPOINT_URL_KINESIS    the Kinesis endpoint (the harness's proxy)
//	AWS_ENDPOINT_URL_DYNAMODB   the DynamoDB endpoint
//	AWS_REGION, credentials     the SDK's default chain
//
// Settings that differ from the library's defaults, and why: the initial
// position is TRIM_HORIZON (the library's default, LATEST, would skip the
// benchmark's backlog; leasehold's default is TRIM_HORIZON too) and the two
// endpoints point at the local stack. Everything else (idle time between
// reads, max records, shard sync and lease intervals, the logrus logger at
// Info, no metrics) is the library's.
//
// On SIGTERM or SIGINT it shuts the worker down (each shard's processor
// fsyncs and checkpoints) and exits 0; a missing setting exits 2.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
)

// checkpointInterval matches leasehold's worker.checkpoint_interval
// default: records are fsynced and checkpointed at most this often, so
// both consumers do the same durable work per record.
const checkpointInterval = 5 * time.Second

func main() {
	env := map[string]string{}
	for _, k := range []string{"LEASEHOLD_BENCH_STREAM", "LEASEHOLD_BENCH_APP", "LEASEHOLD_BENCH_WORKER_ID", "LEASEHOLD_BENCH_OUT",
		"AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB"} {
		env[k] = os.Getenv(k)
		if env[k] == "" {
			fmt.Fprintf(os.Stderr, "kclref: %s is not set\n", k)
			os.Exit(2)
		}
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	out, err := openSink(env["LEASEHOLD_BENCH_OUT"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclref:", err)
		os.Exit(1)
	}

	cfg := config.NewKinesisClientLibConfig(env["LEASEHOLD_BENCH_APP"], env["LEASEHOLD_BENCH_STREAM"], region, env["LEASEHOLD_BENCH_WORKER_ID"]).
		WithInitialPositionInStream(config.TRIM_HORIZON).
		WithKinesisEndpoint(env["AWS_ENDPOINT_URL_KINESIS"]).
		WithDynamoDBEndpoint(env["AWS_ENDPOINT_URL_DYNAMODB"])
	w := worker.NewWorker(&factory{sink: out, workerID: env["LEASEHOLD_BENCH_WORKER_ID"]}, cfg)
	if err := w.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "kclref: start:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stopFlusher := out.flushEvery(time.Second)
	<-sig
	w.Shutdown()
	stopFlusher()
	if err := out.close(); err != nil {
		fmt.Fprintln(os.Stderr, "kclref:", err)
		os.Exit(1)
	}
}

// line is one output line: the fields of leasehold's file sink
// (processors/filesink), so that both consumers encode the same JSON.
type line struct {
	WorkerID          string    `json:"worker_id"`
	ShardID           string    `json:"shard_id"`
	SequenceNumber    string    `json:"sequence_number"`
	SubSequenceNumber int64     `json:"sub_sequence_number"`
	PartitionKey      string    `json:"partition_key"`
	Data              string    `json:"data"`
	ProcessedAt       time.Time `json:"processed_at"`
}

// sink is the output file shared by every shard processor of the process.
// Safe for concurrent use.
type sink struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
}

func openSink(path string) (*sink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	return &sink{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (s *sink) write(l line) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enc.Encode(l)
}

// sync writes the buffer out and fsyncs: what a checkpoint waits for.
func (s *sink) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Sync()
}

// flushEvery writes buffered lines to the file (no fsync) every d, so
// that the harness, which counts lines in the file, sees records of a
// shard that has gone quiet before its next checkpoint. It returns a
// function that stops it.
func (s *sink) flushEvery(d time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.mu.Lock()
				_ = s.w.Flush()
				s.mu.Unlock()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (s *sink) close() error {
	if err := s.sync(); err != nil {
		return err
	}
	return s.f.Close()
}

type factory struct {
	sink     *sink
	workerID string
}

func (f *factory) CreateProcessor() kcl.IRecordProcessor {
	return &processor{sink: f.sink, workerID: f.workerID}
}

// processor handles one shard: it appends each record, then fsyncs and
// checkpoints the batch's last record when checkpointInterval has passed.
type processor struct {
	sink     *sink
	workerID string
	shardID  string
	lastCP   time.Time
	lastSeq  *string // last record written, for the checkpoint on a requested shutdown
}

func (p *processor) Initialize(in *kcl.InitializationInput) {
	p.shardID = in.ShardId
	p.lastCP = time.Now()
}

func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	now := time.Now().UTC()
	for _, r := range in.Records {
		if err := p.sink.write(line{WorkerID: p.workerID, ShardID: p.shardID, SequenceNumber: aws.ToString(r.SequenceNumber),
			PartitionKey: aws.ToString(r.PartitionKey), Data: string(r.Data), ProcessedAt: now}); err != nil {
			fmt.Fprintln(os.Stderr, "kclref: write:", err)
			os.Exit(1)
		}
	}
	p.lastSeq = in.Records[len(in.Records)-1].SequenceNumber
	if time.Since(p.lastCP) < checkpointInterval {
		return
	}
	p.checkpoint(in.Checkpointer, p.lastSeq)
}

func (p *processor) checkpoint(cp kcl.IRecordProcessorCheckpointer, seq *string) {
	p.lastCP = time.Now()
	if err := p.sink.sync(); err != nil {
		fmt.Fprintln(os.Stderr, "kclref: fsync:", err)
		os.Exit(1)
	}
	if err := cp.Checkpoint(seq); err != nil {
		fmt.Fprintln(os.Stderr, "kclref: checkpoint:", err)
	}
}

// Shutdown makes what was written durable. At a shard's end (TERMINATE)
// the library requires a checkpoint with nil (SHARD_END); on a requested
// shutdown the last written record is checkpointed.
func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	switch in.ShutdownReason {
	case kcl.TERMINATE:
		p.checkpoint(in.Checkpointer, nil)
	case kcl.REQUESTED:
		if p.lastSeq != nil {
			p.checkpoint(in.Checkpointer, p.lastSeq)
		}
	}
}
