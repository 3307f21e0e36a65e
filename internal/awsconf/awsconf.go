// Package awsconf builds AWS SDK v2 configuration and clients the same way
// for every command: the SDK's default credential and region chain,
// including AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, plus the few
// client options that S3-compatible emulators need.
package awsconf

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Load resolves the AWS configuration from the default chain. It blocks
// only as long as the chain needs (it may read files or, on EC2, IMDS). An
// error means the chain itself failed, e.g. a malformed shared config file.
func Load(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS config: no region; set AWS_REGION (e.g. us-east-1) or a region in ~/.aws/config")
	}
	cfg.APIOptions = append(cfg.APIOptions, RequestBodyWithoutWriteTo)
	return cfg, nil
}

// Kinesis returns a Kinesis client for cfg.
func Kinesis(cfg aws.Config) *kinesis.Client { return kinesis.NewFromConfig(cfg) }

// DynamoDB returns a DynamoDB client for cfg.
func DynamoDB(cfg aws.Config) *dynamodb.Client { return dynamodb.NewFromConfig(cfg) }

// S3 returns an S3 client for cfg. When an endpoint override is in effect
// (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), it uses path-style addressing
// and computes checksums only when an operation requires them: emulators
// such as gofakes3 do not resolve virtual-hosted buckets on 127.0.0.1 and
// mangle aws-chunked trailing checksums.
func S3(cfg aws.Config) *s3.Client {
	custom := os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" || cfg.BaseEndpoint != nil
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if custom {
			emulatorS3(o)
		}
	})
}

// S3At returns an S3 client for an S3-compatible endpoint such as the
// local stack's, with the same emulator options as S3.
func S3At(cfg aws.Config, endpoint string) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		emulatorS3(o)
	})
}

// emulatorS3 sets what S3 emulators need: path-style addressing and
// checksums only when an operation requires them.
func emulatorS3(o *s3.Options) {
	o.UsePathStyle = true
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}
