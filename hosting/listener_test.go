package hosting

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestLimitPerIP(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitPerIP(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial("127.0.0.1"), dial("127.0.0.1")
	sa, sb := <-accepted, <-accepted
	third := dial("127.0.0.1")
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a third connection from one address must be closed at once, got %v", err)
	}
	other := dial("127.0.0.2")
	so := <-accepted
	// closing one frees a slot for the address
	sa.Close()
	a.Close()
	again := dial("127.0.0.1")
	sg := <-accepted
	for _, c := range []net.Conn{b, sb, other, so, again, sg, third} {
		c.Close()
	}
}
