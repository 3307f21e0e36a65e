//go:build !production

package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscfg "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/devstack"
)

// localStack holds the endpoints and clients of the local stack for the
// commands that create and delete streams, tables and buckets there
// (bench, demo).
type localStack struct {
	Kinesis, DynamoDB, S3, OpenSearch string // endpoint URLs
	// Elasticsearch is the local Elasticsearch's HTTPS URL and
	// ElasticsearchCA the CA it generated (when it has started once).
	Elasticsearch, ElasticsearchCA string

	kc  *kinesis.Client
	db  *dynamodb.Client
	s3c *s3.Client
}

// openLocalStack resolves the endpoints (AWS_ENDPOINT_URL_* or the dev.*
// ports), refuses any that is not on loopback, and builds the clients with
// the region and test credentials the emulators accept unless the
// environment has them (passed to the SDK as load options: the process
// environment is left alone). Errors are the user's to fix.
func openLocalStack(ctx context.Context, c config.Config) (localStack, error) {
	ls := localStack{
		Kinesis:       endpoint("AWS_ENDPOINT_URL_KINESIS", c.Dev.KinesisPort),
		DynamoDB:      endpoint("AWS_ENDPOINT_URL_DYNAMODB", c.Dev.DynamoDBPort),
		S3:            endpoint("AWS_ENDPOINT_URL_S3", c.Dev.S3Port),
		OpenSearch:    fmt.Sprintf("http://127.0.0.1:%d", c.Dev.OpenSearchPort),
		Elasticsearch: fmt.Sprintf("https://127.0.0.1:%d", c.Dev.ElasticsearchPort),
	}
	if st, err := devstack.New(devstack.Config{Dir: c.Dev.Dir, KinesisPort: c.Dev.KinesisPort, DynamoDBPort: c.Dev.DynamoDBPort,
		S3Port: c.Dev.S3Port, OpenSearchPort: c.Dev.OpenSearchPort, ElasticsearchPort: c.Dev.ElasticsearchPort}, nil); err == nil {
		ls.ElasticsearchCA = st.ElasticsearchCAFile()
	}
	for _, ep := range []string{ls.Kinesis, ls.DynamoDB, ls.S3} {
		if err := loopbackOnly(ep); err != nil {
			return ls, usageError{err}
		}
	}
	awsCfg, err := awsconf.Load(ctx, localDefaults()...)
	if err != nil {
		return ls, usageError{err}
	}
	ls.kc = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(ls.Kinesis) })
	ls.db = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ls.DynamoDB) })
	ls.s3c = awsconf.S3At(awsCfg, ls.S3)
	return ls, nil
}

// localDefaults returns the SDK load options that give the local stack's
// region and test credentials where the environment sets none.
func localDefaults() []func(*awscfg.LoadOptions) error {
	var opts []func(*awscfg.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, awscfg.WithRegion(localRegion))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awscfg.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(localKey, localKey, "")))
	}
	return opts
}

// The region and credentials the emulators accept.
const (
	localRegion = "us-east-1"
	localKey    = "test"
)

// localRun is what the demo and the benchmarks that start worker
// processes need: the configuration, the local stack, and the path of this
// executable, which the workers run.
func localRun(cmd *cobra.Command) (config.Config, localStack, string, error) {
	c, _, err := loadConfig(cmd)
	if err != nil {
		return config.Config{}, localStack{}, "", err
	}
	ls, err := openLocalStack(cmd.Context(), c)
	if err != nil {
		return config.Config{}, localStack{}, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return config.Config{}, localStack{}, "", err
	}
	return c, ls, self, nil
}

// localChildEnv returns the variables a child process (a worker the demo
// or a benchmark starts) needs to reach the local stack when the
// environment sets no region or credentials: the children take them from
// their environment, as any deployed worker does.
func localChildEnv() []string {
	var env []string
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		env = append(env, "AWS_REGION="+localRegion)
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		env = append(env, "AWS_ACCESS_KEY_ID="+localKey, "AWS_SECRET_ACCESS_KEY="+localKey)
	}
	return env
}

func endpoint(env string, port int) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		return v
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

func loopbackOnly(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("endpoint %s is not on loopback: this command creates and deletes streams, tables and buckets, so it only runs against the local stack", ep)
}
