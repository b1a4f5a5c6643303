package mailer

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// quickConn is a TCP connection whose reads and writes skip the Go
// scheduler's system call bookkeeping (RawSyscall). Go's sockets are
// non-blocking: a read or write moves bytes or fails at once with EAGAIN,
// and then it waits in the network poller, deadlines and Close included,
// as net.Conn's own do (through SyscallConn). What it skips: on loopback
// a write also runs the receiver's TCP stack and lasts 20–40 µs here, and
// an ordinary system call that long lets the runtime's sysmon take the
// thread's P and wake another thread to run Go code while it lasts; the
// writer, back, must wait for a P again. On a mailer with one P
// (MAILER_PROCS) that was two thread wake-ups per write, two writes a
// mail. Only the SMTP connection uses it; reads and writes of other
// connections are left to net.
//
// It embeds net.Conn, not *net.TCPConn, so that io.Copy finds no ReadFrom
// or WriteTo to go round Read and Write by.
type quickConn struct {
	net.Conn // a *net.TCPConn
	rc       syscall.RawConn
}

func newQuickConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickConn{Conn: tc, rc: rc}
}

func (c *quickConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *quickConn) Write(b []byte) (int, error) {
	written := 0
	var failed error
	err := c.rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
			switch {
			case e == syscall.EINTR:
			case e == syscall.EAGAIN:
				return false
			case e != 0:
				failed = e
				return true
			case r == 0: // as poll.FD.Write has it; not seen on a socket
				failed = io.ErrUnexpectedEOF
				return true
			default:
				written += int(r)
			}
		}
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return written, c.opError("write", err)
	}
	return written, nil
}

// opError dresses err as net.Conn's own errors are dressed: a deadline
// reads as a timeout, a closed connection as net.ErrClosed, a reset as
// syscall.ECONNRESET.
func (c *quickConn) opError(op string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
