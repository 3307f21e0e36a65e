package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/leasehold/leasehold/internal/awsconf"
)

// kinesisDelay is how long kinesis-local keeps a stream CREATING,
// UPDATING or DELETING (default 500ms). Short, so tests are fast, but not
// zero, so code still sees the transitional states real Kinesis has.
const kinesisDelay = "100ms"

// kinesisShardLimit raises kinesis-local's account shard limit (default
// 50): integration tests create many 4-shard streams.
const kinesisShardLimit = "1000"

// launch returns how to start svc. It prepares what the server needs on
// disk (the preload script, data folders, OpenSearch's config) but starts
// nothing.
func (s *Stack) launch(ctx context.Context, svc *service) (launchSpec, error) {
	switch svc.name {
	case Kinesis:
		return s.kinesisLaunch(ctx, svc)
	case DynamoDB:
		return s.dynamoDBLaunch(ctx, svc)
	case S3:
		return s.s3Launch(svc)
	case OpenSearch:
		return s.searchLaunch(ctx, svc, openSearchDist)
	case Elasticsearch:
		return s.searchLaunch(ctx, svc, elasticsearchDist)
	}
	return launchSpec{}, fmt.Errorf("%w %q", ErrUnknownService, svc.name)
}

func (s *Stack) kinesisLaunch(ctx context.Context, svc *service) (launchSpec, error) {
	node, err := nodeBin(ctx)
	if err != nil {
		return launchSpec{}, err
	}
	preload := filepath.Join(s.runDir(), "loopback-preload.js")
	if err := os.MkdirAll(s.runDir(), 0o755); err != nil {
		return launchSpec{}, fmt.Errorf("prepare kinesis: %w", err)
	}
	if err := os.WriteFile(preload, loopbackPreload, 0o644); err != nil {
		return launchSpec{}, fmt.Errorf("prepare kinesis: %w", err)
	}
	dir := filepath.Join(s.dataDir(), Kinesis)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return launchSpec{}, fmt.Errorf("prepare kinesis: %w", err)
	}
	env := append(baseEnv(dir),
		"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(svc.port),
		"KINESIS_MOCK_TLS_PORT="+strconv.Itoa(svc.port+1),
		// The certificate path is relative to the working directory by default.
		"KINESIS_MOCK_CERT_PATH="+filepath.Join(filepath.Dir(s.kinesisMain()), "server.json"),
		"AWS_REGION=us-east-1",
		"SHARD_LIMIT="+kinesisShardLimit,
		"SHOULD_PERSIST_DATA=false",
		// The JS build logs nothing, not even its start-up lines, unless
		// LOG_LEVEL is set; INFO does not log each request.
		"LOG_LEVEL=INFO",
	)
	for _, k := range []string{
		"CREATE_STREAM_DURATION", "DELETE_STREAM_DURATION", "MERGE_SHARDS_DURATION",
		"SPLIT_SHARD_DURATION", "UPDATE_SHARD_COUNT_DURATION", "UPDATE_STREAM_MODE_DURATION",
		"REGISTER_STREAM_CONSUMER_DURATION", "DEREGISTER_STREAM_CONSUMER_DURATION",
		"START_STREAM_ENCRYPTION_DURATION", "STOP_STREAM_ENCRYPTION_DURATION",
	} {
		env = append(env, k+"="+kinesisDelay)
	}
	return launchSpec{
		argv: []string{node, "-r", preload, s.kinesisMain()},
		env:  env,
		dir:  dir,
	}, nil
}

func (s *Stack) dynamoDBLaunch(ctx context.Context, svc *service) (launchSpec, error) {
	node, err := nodeBin(ctx)
	if err != nil {
		return launchSpec{}, err
	}
	dir := filepath.Join(s.dataDir(), DynamoDB)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return launchSpec{}, fmt.Errorf("prepare dynamodb: %w", err)
	}
	// The preload also keeps dynalite alive when a client drops a
	// connection mid-request (it would die of an uncaught ECONNRESET).
	preload := filepath.Join(s.runDir(), "loopback-preload.js")
	if err := os.MkdirAll(s.runDir(), 0o755); err != nil {
		return launchSpec{}, fmt.Errorf("prepare dynamodb: %w", err)
	}
	if err := os.WriteFile(preload, loopbackPreload, 0o644); err != nil {
		return launchSpec{}, fmt.Errorf("prepare dynamodb: %w", err)
	}
	return launchSpec{
		// No --path: tables live in memory, like the Kinesis streams whose
		// leases and checkpoints they hold.
		argv: []string{node, "-r", preload, s.dynaliteCLI(),
			"--host", "127.0.0.1", "--port", strconv.Itoa(svc.port),
			"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"},
		env: baseEnv(dir),
		dir: dir,
	}, nil
}

func (s *Stack) s3Launch(svc *service) (launchSpec, error) {
	if s.cfg.Executable == "" {
		return launchSpec{}, fmt.Errorf("%w: no leasehold executable to run `dev s3-server` with", ErrInvalidConfig)
	}
	dir := filepath.Join(s.dataDir(), S3)
	return launchSpec{
		argv: []string{s.cfg.Executable, "dev", "s3-server",
			"--addr", "127.0.0.1:" + strconv.Itoa(svc.port), "--dir", dir},
		env: baseEnv(s.cfg.Dir),
		dir: s.cfg.Dir,
	}, nil
}

// probe sends one real request to svc and returns nil when it answered
// as a working server would. It blocks until the answer or ctx ends.
func (s *Stack) probe(ctx context.Context, svc *service) error {
	endpoint := s.Endpoint(svc.name)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	// Every probe's client carries the body fix every other client has, so
	// a probe never fails on the SDK's closed-body race (awsconf/body.go).
	fix := []func(*middleware.Stack) error{awsconf.RequestBodyWithoutWriteTo}
	switch svc.name {
	case Kinesis:
		c := kinesis.New(kinesis.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint), Retryer: aws.NopRetryer{}, APIOptions: fix})
		_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("kinesis ListStreams: %w", err)
		}
	case DynamoDB:
		c := dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint), Retryer: aws.NopRetryer{}, APIOptions: fix})
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("dynamodb ListTables: %w", err)
		}
	case S3:
		c := s3.New(s3.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Retryer: aws.NopRetryer{}, APIOptions: fix})
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return fmt.Errorf("s3 ListBuckets: %w", err)
		}
	case OpenSearch:
		return clusterHealth(ctx, s.cfg.HTTPClient, endpoint, "", "")
	case Elasticsearch:
		c, err := s.elasticsearchClient()
		if err != nil {
			return err
		}
		return clusterHealth(ctx, c, endpoint, ElasticsearchUser, ElasticsearchPassword)
	default:
		return fmt.Errorf("%w %q", ErrUnknownService, svc.name)
	}
	return nil
}

// clusterHealth asks GET /_cluster/health of OpenSearch or Elasticsearch
// (with basic auth when user is set) and accepts yellow or green.
func clusterHealth(ctx context.Context, c *http.Client, endpoint, user, password string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_cluster/health", nil)
	if err != nil {
		return fmt.Errorf("cluster health: %w", err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cluster health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster health: HTTP %s", resp.Status)
	}
	var h struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("cluster health: %w", err)
	}
	if h.Status != "green" && h.Status != "yellow" {
		return fmt.Errorf("cluster health: status %q", h.Status)
	}
	return nil
}
