// Command leasehold-lambda is the AWS Lambda function that sends new
// CloudFront log files to the stream: it handles S3 ObjectCreated events,
// delivered directly or through SQS (optionally via SNS), with
// ingest.Handler. Build it for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./cmd/leasehold-lambda
//
// It reads the same configuration as the leasehold binary from LEASEHOLD_*
// environment variables (LEASEHOLD_STREAM_NAME, LEASEHOLD_INGEST_*; a
// config file with LEASEHOLD_CONFIG). With ingest.manifest_table set (the
// default) it records progress per file, so a retry skips finished files
// and resumes a partial one. It applies a rate limit only when
// ingest.records_per_second or ingest.bytes_per_second is set: concurrent
// invocations cannot share one, and the producer backs off on throttling.
// A configuration mistake fails the cold start, naming the key.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/internal/awsconf"
	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/logging"
)

func main() {
	h, err := setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "leasehold-lambda:", err)
		os.Exit(2)
	}
	lambda.Start(h.Handle)
}

// setup wires the handler from the environment.
func setup(ctx context.Context) (*ingest.Handler, error) {
	c, err := config.Load(os.Getenv("LEASEHOLD_CONFIG"), os.Environ())
	if err != nil {
		return nil, err
	}
	if err := c.LoadSecretFiles(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	log, err := logging.New(c.Log.Level, "json")
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, err
	}
	ic := c.Ingest
	lim, err := ingest.NewLimiter(float64(ic.RecordsPerSecond), float64(ic.BytesPerSecond))
	if err != nil {
		return nil, err
	}
	cfg := ingest.Config{Aggregate: ic.Aggregate, CheckpointLines: ic.CheckpointLines, Limiter: lim, Logger: log, DrainTimeout: 20 * time.Second,
		ClaimDuration: ic.ClaimDuration}
	if ic.ManifestTable != "" {
		m := ingest.NewDynamoManifest(awsconf.DynamoDB(awsCfg), ic.ManifestTable)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := m.EnsureTable(tctx); err != nil {
			return nil, fmt.Errorf("ingest.manifest_table: %w", err)
		}
		cfg.Manifest = m
	}
	in, err := ingest.New(awsconf.S3(awsCfg), awsconf.Kinesis(awsCfg), c.Stream.Name, cfg)
	if err != nil {
		return nil, err
	}
	log.Info("lambda ready", zap.String("stream", c.Stream.Name), zap.String("manifest_table", ic.ManifestTable), zap.Bool("aggregate", ic.Aggregate))
	return ingest.NewHandler(in, log), nil
}
