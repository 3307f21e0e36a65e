package awsconf

import (
	"context"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// RequestBodyWithoutWriteTo is an SDK client option (aws.Config.APIOptions,
// or a service client's Options.APIOptions) that keeps a request body's
// io.WriterTo from net/http. Load adds it to every configuration.
//
// Why: smithy-go (v1.28.9, the latest release) sends a request body that
// implements io.WriterTo (every bytes.Reader body: all Kinesis and
// DynamoDB calls) through a wrapper whose WriteTo returns io.EOF once the
// SDK has closed it, and the SDK closes it as soon as the response
// headers are in. net/http's writer, after sending ContentLength bytes,
// drains the body with io.Copy to check nothing is left; when the server
// answered quickly, that drain runs after the close, io.Copy takes WriteTo's
// io.EOF for a write error, and the transport closes the connection while
// the response body is still being read: the call fails with "read tcp
// ...: use of closed network connection". Our PutRecords and GetRecords
// callers turn the SDK's retries off (they retry themselves), so each
// such race was a failed call. Without WriteTo, io.Copy reads the closed
// body's io.EOF as the end it is, and the connection survives.
func RequestBodyWithoutWriteTo(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("leasehold.RequestBodyWithoutWriteTo", hideWriteTo), middleware.Before)
}

func hideWriteTo(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return next.HandleBuild(ctx, in)
	}
	s := req.GetStream()
	if _, ok := s.(io.WriterTo); !ok {
		return next.HandleBuild(ctx, in)
	}
	// A seekable stream stays seekable: the SDK rewinds it to sign it
	// and to retry.
	var body io.Reader = readOnly{s}
	if rs, ok := s.(io.ReadSeeker); ok {
		body = readSeekOnly{rs}
	}
	req, err := req.SetStream(body)
	if err != nil {
		return middleware.BuildOutput{}, middleware.Metadata{}, err
	}
	in.Request = req
	return next.HandleBuild(ctx, in)
}

// readOnly and readSeekOnly expose Read (and Seek), nothing else.
type readOnly struct{ r io.Reader }

func (b readOnly) Read(p []byte) (int, error) { return b.r.Read(p) }

type readSeekOnly struct{ r io.ReadSeeker }

func (b readSeekOnly) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b readSeekOnly) Seek(off int64, whence int) (int64, error) { return b.r.Seek(off, whence) }
