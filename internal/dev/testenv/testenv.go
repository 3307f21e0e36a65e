// Package testenv gives integration tests AWS clients pointed at the local
// stack (`leasehold dev up`). Endpoints come from AWS_ENDPOINT_URL_KINESIS,
// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, LEASEHOLD_TEST_OPENSEARCH_URL
// and LEASEHOLD_TEST_ELASTICSEARCH_URL when set, else from the local stack's
// ports (LEASEHOLD_DEV_*_PORT or the defaults).
//
// Integration tests call Require first: under -short they are skipped;
// otherwise an unreachable stack fails the test with a message that says how
// to start it, so a missing service is never mistaken for a pass.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/devstack"
)

// Endpoints of the local stack.
type Endpoints struct {
	Kinesis, DynamoDB, S3, OpenSearch string
	// Elasticsearch is the local Elasticsearch 8 (HTTPS); ES holds how to
	// authenticate to it and trust it.
	Elasticsearch string
	ES            ElasticsearchAuth
}

// ElasticsearchAuth is what a client of the local Elasticsearch needs
// besides its URL: security is on as the integ-test zip ships it.
type ElasticsearchAuth struct {
	Username, Password string
	// CAFile is the PEM CA the server generated at its first start.
	CAFile string
}

// Local returns the endpoints from the environment or the default ports.
func Local() Endpoints {
	c := config.Default()
	_ = config.ApplyEnv(&c, os.Environ()) // LEASEHOLD_DEV_*_PORT move the stack; other errors surface in the binary
	d := c.Dev
	get := func(env string, port int) string {
		if v := os.Getenv(env); v != "" {
			return v
		}
		return fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return Endpoints{
		Kinesis:    get("AWS_ENDPOINT_URL_KINESIS", d.KinesisPort),
		DynamoDB:   get("AWS_ENDPOINT_URL_DYNAMODB", d.DynamoDBPort),
		S3:         get("AWS_ENDPOINT_URL_S3", d.S3Port),
		OpenSearch: get("LEASEHOLD_TEST_OPENSEARCH_URL", d.OpenSearchPort),
		Elasticsearch: func() string {
			if v := os.Getenv("LEASEHOLD_TEST_ELASTICSEARCH_URL"); v != "" {
				return v
			}
			return fmt.Sprintf("https://127.0.0.1:%d", d.ElasticsearchPort)
		}(),
		ES: ElasticsearchAuth{
			Username: envOr("LEASEHOLD_TEST_ELASTICSEARCH_USERNAME", devstack.ElasticsearchUser),
			Password: envOr("LEASEHOLD_TEST_ELASTICSEARCH_PASSWORD", devstack.ElasticsearchPassword),
			CAFile:   envOr("LEASEHOLD_TEST_ELASTICSEARCH_CA_FILE", localCAFile(c)),
		},
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// localCAFile is where the local stack's Elasticsearch keeps its CA, for
// a dev.dir relative to the repository root; "" when it cannot be told.
func localCAFile(c config.Config) string {
	s, err := localStack(c)
	if err != nil {
		return ""
	}
	return s.ElasticsearchCAFile()
}

// localStack describes the local stack of c, with a relative dev.dir
// taken from the repository root.
func localStack(c config.Config) (*devstack.Stack, error) {
	dir := c.Dev.Dir
	if !filepath.IsAbs(dir) {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, dir)
	}
	return devstack.New(devstack.Config{Dir: dir, KinesisPort: c.Dev.KinesisPort, DynamoDBPort: c.Dev.DynamoDBPort,
		S3Port: c.Dev.S3Port, OpenSearchPort: c.Dev.OpenSearchPort, ElasticsearchPort: c.Dev.ElasticsearchPort}, nil)
}

// Require skips the test under -short and fails it at once when any of the
// named services ("kinesis", "dynamodb", "s3", "opensearch",
// "elasticsearch") does not accept TCP connections.
func Require(t testing.TB, services ...string) Endpoints {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local stack; runs without -short")
	}
	e := Local()
	for _, s := range services {
		var raw string
		switch s {
		case "kinesis":
			raw = e.Kinesis
		case "dynamodb":
			raw = e.DynamoDB
		case "s3":
			raw = e.S3
		case "opensearch":
			raw = e.OpenSearch
		case "elasticsearch":
			raw = e.Elasticsearch
		default:
			t.Fatalf("testenv: unknown service %q", s)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("testenv: endpoint %q: %v", raw, err)
		}
		c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
		if err != nil {
			how := "`go run ./cmd/leasehold dev up`"
			if s == "elasticsearch" {
				how = "`go run ./cmd/leasehold dev up --with elasticsearch`"
			}
			t.Fatalf("testenv: %s at %s is not reachable (%v); start the local stack with %s or run `make test`", s, raw, err, how)
		}
		c.Close()
	}
	return e
}

// AWS returns an aws.Config with static test credentials and region
// us-east-1, and the request-body option awsconf.Load adds; clients built
// from it use the Endpoints below.
func AWS() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions:  []func(*middleware.Stack) error{awsconf.RequestBodyWithoutWriteTo},
	}
}

// Kinesis returns a client for the local Kinesis.
func Kinesis(e Endpoints) *kinesis.Client {
	return kinesis.NewFromConfig(AWS(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(e.Kinesis) })
}

// DynamoDB returns a client for the local DynamoDB.
func DynamoDB(e Endpoints) *dynamodb.Client {
	return dynamodb.NewFromConfig(AWS(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.DynamoDB) })
}

// S3 returns a path-style client for the local S3 that computes checksums
// only when required (see DESIGN.md on emulators and aws-chunked).
func S3(e Endpoints) *s3.Client { return awsconf.S3At(AWS(), e.S3) }

var (
	seqMu sync.Mutex
	seq   int
)

// Name returns a resource name unique to this test run, safe for streams,
// tables, buckets and indices: lowercase letters, digits and dashes.
func Name(t testing.TB, prefix string) string {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	base := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	if len(base) > 30 {
		base = base[:30]
	}
	return fmt.Sprintf("%s-%s-%d-%d", prefix, strings.Trim(base, "-"), time.Now().UnixNano()%1e6, n)
}

// Context returns a context that ends with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// GeoIPCityDB returns the path of the city database the local stack
// installs for the demo (DB-IP City Lite, see devstack.InstallGeoIP), for
// tests that check generated traffic against real data. Under -short the
// test is skipped; otherwise a missing database fails it with how to
// install it. A relative dev.dir (LEASEHOLD_DEV_DIR, default .leasehold)
// is taken from the repository root, found as the nearest folder above
// the test's package that holds go.mod.
func GeoIPCityDB(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local stack's GeoIP database; runs without -short")
	}
	c := config.Default()
	_ = config.ApplyEnv(&c, os.Environ())
	s, err := localStack(c)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if !s.GeoIPInstalled() {
		t.Fatalf("testenv: the GeoIP database is not installed at %s; run `go run ./cmd/leasehold dev up` (without --only) or `make test`", s.GeoIPCityDB())
	}
	return s.GeoIPCityDB()
}

// moduleRoot is the nearest folder at or above the working directory
// that holds go.mod: the repository root for tests of this module.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s", wd)
		}
	}
}

// CreateStream creates a stream of n shards on the local Kinesis, waits
// (up to a minute) until it is ACTIVE and deletes it when the test ends.
func CreateStream(t testing.TB, kc *kinesis.Client, name string, n int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &name, ShardCount: aws.Int32(n)}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: &name, EnforceConsumerDeletion: aws.Bool(true)})
	})
	for {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == kinesistypes.StreamStatusActive {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s never became ACTIVE", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
