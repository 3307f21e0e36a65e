package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// smallSendBuffers gives each connection the server accepts a small send
// buffer, so the server is still writing a body while the client reads it
// slowly, as a loaded CI machine's clients do.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// TestS3ServerBodiesSurviveConcurrentWrites GETs objects and reads their
// bodies slowly while other clients overwrite and delete their neighbours
// (bolt frees and reuses the pages) and PUT large objects (the database
// grows and bolt remaps it). Every body must be what was put. When the
// bodies aliased bolt's mmap (s3bolt's GetObject), the server process
// died with "fatal error: fault" here, taking the test binary with it, or
// a body came back with other bytes.
func TestS3ServerBodiesSurviveConcurrentWrites(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := serveS3(t, smallSendBuffers{ln}, t.TempDir())
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bodies")}); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{3, 4})
	var mu sync.Mutex
	random := func(n int) []byte {
		mu.Lock()
		defer mu.Unlock()
		p := make([]byte, n)
		_, _ = rng.Read(p)
		return p
	}
	put := func(key string, body []byte) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bodies"), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	// Kept objects sit between churned ones ("k1-a" < "k1-b" < "k2-a"),
	// so a churned write rewrites the leaf a kept object lives in.
	const kept = 6
	want := make([][32]byte, kept)
	for i := range kept {
		body := random(200 << 10)
		want[i] = sha256.Sum256(body)
		if err := put(fmt.Sprintf("k%d-a", i), body); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(3 * time.Second)
	if testing.Short() {
		deadline = time.Now().Add(1500 * time.Millisecond)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for r := range 4 {
		wg.Go(func() {
			buf := make([]byte, 4<<10)
			for n := 0; time.Now().Before(deadline); n++ {
				i := (r + n) % kept
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bodies"), Key: aws.String(fmt.Sprintf("k%d-a", i))})
				if err != nil {
					errs <- err
					return
				}
				h := sha256.New()
				for {
					m, err := out.Body.Read(buf)
					h.Write(buf[:m])
					if err == io.EOF {
						break
					}
					if err != nil {
						errs <- err
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
				out.Body.Close()
				if got := h.Sum(nil); !bytes.Equal(got, want[i][:]) {
					errs <- fmt.Errorf("GET k%d-a: body sha256 %x, want %x (other bytes than were put)", i, got, want[i])
					return
				}
			}
		})
	}
	for w := range 2 {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				var err error
				switch n % 3 {
				case 0:
					err = put(fmt.Sprintf("k%d-b", (w+n)%kept), random(100<<10+n%7*1000))
				case 1:
					_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bodies"), Key: aws.String(fmt.Sprintf("k%d-b", (w+n+3)%kept))})
				case 2:
					err = put(fmt.Sprintf("z-grow-%d-%d", w, n), random(512<<10))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// serveS3 serves S3 from dir on ln until the test ends.
func serveS3(t *testing.T, ln net.Listener, dir string) *s3.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeS3(ctx, ln, dir, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeS3: %v", err)
		}
	})
	return s3Client(ln.Addr().String())
}
