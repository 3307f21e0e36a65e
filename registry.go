package leasehold

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/assetlookup"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/dynamosink"
	"github.com/leasehold/leasehold/processors/elasticsearch"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/processors/s3sink"
	"github.com/leasehold/leasehold/processors/transform"
)

// NewRegistry returns a registry holding every built-in type: the
// processors parse, useragent, geoip, anonymize_ip, asset_id, filter and
// asset_lookup; the sinks opensearch, elasticsearch, s3, dynamodb and
// file; the dead-letter types s3 and file. Add your own types to it and
// pass it to New with WithRegistry (or use WithProcessor and WithSink,
// which add to it for you).
func NewRegistry() *processors.Registry {
	r := processors.NewRegistry()
	transform.Register(r)
	assetlookup.Register(r)
	filesink.Register(r)
	s3sink.Register(r)
	opensearch.Register(r)
	elasticsearch.Register(r)
	dynamosink.Register(r)
	deadletter.Register(r)
	return r
}

// AWSDeps returns the dependencies the built-in types need, built from
// one AWS configuration: its S3 and DynamoDB clients (path-style S3 with
// checksums only when required when an endpoint is overridden, as S3
// emulators need), the configuration itself and log (nil for none).
func AWSDeps(cfg aws.Config, log *zap.Logger) processors.Deps {
	return processors.Deps{Logger: log, AWS: &cfg, S3: awsconf.S3(cfg), DynamoDB: awsconf.DynamoDB(cfg)}
}

// LoadAWSConfig resolves the AWS configuration from the SDK's default
// chain (environment, shared files, IMDS), including AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE>. It blocks as long as the chain needs. An
// error (a malformed shared file, no region) is a *ConfigError.
func LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconf.Load(ctx)
	return cfg, configErr(err)
}
