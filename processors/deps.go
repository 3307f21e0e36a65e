package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
)

// Deps is what the constructors in a Registry may use: the dependencies a
// program shares between stages, supplied once to Build. Every field is
// optional here; a constructor that needs one it is not given fails with
// an error naming the field (see ErrMissingDep), at construction, never
// later. The zero Deps suits types that need nothing (every processor in
// processors/transform, the file sink, the file dead-letter type).
type Deps struct {
	// Logger receives the stages' warnings (retries, refresh failures).
	// Default (nil): the stages log nothing.
	Logger *zap.Logger
	// AWS is the AWS configuration. The opensearch sink signs with its
	// credentials when aws_sigv4 is on. Default (nil): that sink loads
	// the SDK's default chain itself.
	AWS *aws.Config
	// S3 is the S3 client of the s3 sink and the s3 dead-letter type.
	// *s3.Client implements it. Default (nil): those types are errors.
	S3 S3Client
	// DynamoDB is the DynamoDB client of the dynamodb sink and of
	// asset_lookup with a table. *dynamodb.Client implements it. Default
	// (nil): those types are errors.
	DynamoDB DynamoDBClient
}

// S3Client is the part of the S3 API the built-in stages call.
// *s3.Client implements it.
type S3Client interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// DynamoDBClient is the part of the DynamoDB API the built-in stages call.
// *dynamodb.Client implements it.
type DynamoDBClient interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var (
	_ S3Client       = (*s3.Client)(nil)
	_ DynamoDBClient = (*dynamodb.Client)(nil)
)

// ErrMissingDep is wrapped by the error of a constructor whose type needs
// a Deps field that is nil: "processors: missing dependency: Deps.S3 (the
// s3 sink writes objects with it)".
var ErrMissingDep = errors.New("processors: missing dependency")

// MissingDep returns an error wrapping ErrMissingDep that names the Deps
// field and says what the type needs it for.
func MissingDep(field, why string) error {
	return fmt.Errorf("%w: Deps.%s (%s)", ErrMissingDep, field, why)
}

// Log returns d.Logger, or a logger that discards everything when it is
// nil, so constructors never check for nil.
func (d Deps) Log() *zap.Logger {
	if d.Logger == nil {
		return zap.NewNop()
	}
	return d.Logger
}
