package awsconf

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/leasehold/leasehold/internal/dev/kinesisbench"
)

// TestRequestBodyWithoutWriteToKeepsTheConnection replays, every time, the
// interleaving behind CI's "use of closed network connection" on a
// PutRecords response: the server (kinesisbench, our Kinesis-compatible
// server) answers, the SDK gets the response and closes the request body,
// and only then does net/http's writer finish the request (it drains the
// body after sending it) while the response body (about 40 KB, more than
// the transport buffers) is still to be read. A loaded machine does that
// by chance; lateWriter does it on purpose. With the SDK's body the drain
// takes WriteTo's io.EOF for a write error and closes the connection under
// the response; with RequestBodyWithoutWriteTo the call succeeds.
func TestRequestBodyWithoutWriteToKeepsTheConnection(t *testing.T) {
	srv, err := kinesisbench.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, tc := range []struct {
		name    string
		options []func(*middleware.Stack) error
		wantErr string
	}{
		{"sdk body", nil, "use of closed network connection"},
		{"without WriteTo", []func(*middleware.Stack) error{RequestBodyWithoutWriteTo}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			late := newLateWriter()
			kc := kinesis.New(kinesis.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
				HTTPClient:  late, APIOptions: tc.options,
			})
			ctx := context.Background()
			stream := aws.String(strings.ReplaceAll(tc.name, " ", "-"))
			if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: stream, ShardCount: aws.Int32(1)}); err != nil {
				t.Fatal(err)
			}
			var entries []types.PutRecordsRequestEntry
			for i := range 500 {
				entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint(i))})
			}
			late.armed.Store(true)
			_, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: stream, Records: entries})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("PutRecords: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("PutRecords: %v; want %q (a smithy-go that no longer has the defect? then RequestBodyWithoutWriteTo can go)", err, tc.wantErr)
			}
		})
	}
}

// lateWriter is an HTTP client that replays the interleaving on the
// PutRecords call once armed: its body goes out in one write (the buffer
// holds it all), which returns only after Do has returned with the body
// closed, as smithy's client handler closes it; and the response body is
// read only after the transport has finished with the request body (its
// drain and Close) and then either closed the connection or, as it should,
// left it open for a second.
type lateWriter struct {
	hc    *http.Client
	armed atomic.Bool
	gated atomic.Bool // one late read is enough

	done        chan struct{} // Do returned, the body closed
	bodyDone    chan struct{} // the transport closed the request body
	bodyOnce    sync.Once
	waitTimeout time.Duration
}

func newLateWriter() *lateWriter {
	h := &lateWriter{done: make(chan struct{}), bodyDone: make(chan struct{}), waitTimeout: 5 * time.Second}
	h.hc = &http.Client{Transport: &http.Transport{WriteBufferSize: 1 << 20, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &lateConn{Conn: c, h: h, closed: make(chan struct{})}, nil
	}}}
	return h
}

func (h *lateWriter) Do(req *http.Request) (*http.Response, error) {
	if !h.armed.Load() || req.Body == nil {
		return h.hc.Do(req)
	}
	body := req.Body
	signal := func() { h.bodyOnce.Do(func() { close(h.bodyDone) }) }
	if wt, ok := body.(io.WriterTo); ok {
		req.Body = &signalWriterTo{signalBody{body, signal}, wt}
	} else {
		req.Body = &signalBody{body, signal}
	}
	resp, err := h.hc.Do(req)
	_ = body.Close()
	close(h.done)
	return resp, err
}

// signalBody reports the transport's Close; signalWriterTo keeps WriteTo
// for bodies that have it, as the defect needs.
type signalBody struct {
	io.ReadCloser
	closed func()
}

func (b *signalBody) Close() error {
	b.closed()
	return b.ReadCloser.Close()
}

type signalWriterTo struct {
	signalBody
	wt io.WriterTo
}

func (b *signalWriterTo) WriteTo(w io.Writer) (int64, error) { return b.wt.WriteTo(w) }

type lateConn struct {
	net.Conn
	h         *lateWriter
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *lateConn) armed() bool { return c.h.armed.Load() }

func (c *lateConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if !c.armed() || bytes.HasPrefix(p, []byte("POST ")) {
		return n, err // the headers: the server answers after the body
	}
	select {
	case <-c.h.done:
	case <-time.After(c.h.waitTimeout):
	}
	return n, err
}

func (c *lateConn) Read(p []byte) (int, error) {
	if c.armed() && closed(c.h.done) && !c.h.gated.Swap(true) {
		select {
		case <-c.h.bodyDone:
		case <-time.After(c.h.waitTimeout):
		}
		select {
		case <-c.closed:
		case <-time.After(time.Second):
		}
	}
	return c.Conn.Read(p)
}

func (c *lateConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
