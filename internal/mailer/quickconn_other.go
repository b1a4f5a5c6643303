//go:build !linux

package mailer

import "net"

// newQuickConn returns c: quickConn is Linux's (quickconn_linux.go).
func newQuickConn(c net.Conn) net.Conn { return c }
