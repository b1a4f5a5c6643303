//go:build linux

package mailer

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// quickPipe is two loopback TCP connections, the dialled one a quickConn.
func quickPipe() (c1, c2 net.Conn, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dialled, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	other := <-accepted
	if other == nil {
		dialled.Close()
		return nil, nil, nil, errors.New("accept failed")
	}
	q := newQuickConn(dialled)
	if _, ok := q.(*quickConn); !ok {
		return nil, nil, nil, errors.New("newQuickConn returned the connection as it was")
	}
	return q, other, func() { q.Close(); other.Close() }, nil
}

// quickConn passes the net.Conn conformance suite both ways round:
// reads, writes, deadlines, Close while blocked, concurrent use.
func TestQuickConnIsANetConn(t *testing.T) {
	t.Run("quick-first", func(t *testing.T) { nettest.TestConn(t, quickPipe) })
	t.Run("quick-second", func(t *testing.T) {
		nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
			c1, c2, stop, err := quickPipe()
			return c2, c1, stop, err
		})
	})
}

// Its errors read as net.Conn's: a deadline as a timeout, a reset by the
// peer as ECONNRESET, a read of a closed peer as EOF.
func TestQuickConnErrors(t *testing.T) {
	q, other, stop, err := quickPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := q.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := q.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read past the deadline = %v; want a timeout", err)
	}
	_ = q.SetReadDeadline(time.Time{})
	// A linger of 0 makes the peer's Close a reset.
	_ = other.(*net.TCPConn).SetLinger(0)
	other.Close()
	var werr error
	for range 100 {
		if _, werr = q.Write([]byte("x")); werr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Errorf("write to a reset connection = %v; want ECONNRESET or EPIPE", werr)
	}
	q.Close()
	if _, err := q.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close = %v; want net.ErrClosed", err)
	}
}
