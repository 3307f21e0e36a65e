package faultproxy_test

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
)

// TestTCPDownAndUp: through the proxy a line is echoed; taken down, an
// open connection is closed and a new one gets nothing through (the
// server never sees its bytes); brought back, it works again.
func TestTCPDownAndUp(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var received atomic.Int64
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					received.Add(1)
					c.Write([]byte(line))
				}
			}()
		}
	}()
	p, err := faultproxy.NewTCP(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	echo := func() error {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hi\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("up: %v", err)
	}
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	time.Sleep(50 * time.Millisecond)
	p.SetDown(true)
	open.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatal("an open connection survived SetDown")
	}
	before := received.Load()
	if err := echo(); err == nil {
		t.Fatal("echo through a down proxy")
	}
	if received.Load() != before {
		t.Fatal("the server got bytes sent while the proxy was down")
	}
	p.SetDown(false)
	if err := echo(); err != nil {
		t.Fatalf("back up: %v", err)
	}
}
