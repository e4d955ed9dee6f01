//go:build linux

package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// lateListener holds its address bound but does not listen until open is
// called: until then a connection to it is refused, as to a replica that
// is down, and a balancer that cannot read gRPC statuses passes the call
// to another replica (nginx's grpc_next_upstream passes a call on after a
// refused connection, but not after a call it has sent was answered
// UNAVAILABLE or cut off, since it does not buffer gRPC bodies). Accept
// waits until open. The gRPC port is one: a replica listens on it once it
// is first ready (and keeps listening through its shutdown delay and
// drain); /readyz on the HTTP port says why it is not ready yet.
type lateListener struct {
	fd     int
	addr   net.Addr
	mu     sync.Mutex
	l      net.Listener // nil until open
	opened chan struct{}
	closed chan struct{}
	broken error // open failed after the descriptor was handed over
	once   sync.Once
}

// bindLate binds addr (TCP, "host:port"; an empty host binds every
// address, IPv6 and IPv4) without listening.
func bindLate(addr string) (*lateListener, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	family, sa := syscall.AF_INET6, syscall.Sockaddr(&syscall.SockaddrInet6{Port: ta.Port})
	if ip4 := ta.IP.To4(); ip4 != nil {
		s4 := &syscall.SockaddrInet4{Port: ta.Port}
		copy(s4.Addr[:], ip4)
		family, sa = syscall.AF_INET, s4
	} else if ta.IP != nil {
		s6 := sa.(*syscall.SockaddrInet6)
		copy(s6.Addr[:], ta.IP.To16())
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil && family == syscall.AF_INET6 && ta.IP == nil { // no IPv6 here
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: ta.Port}
		fd, err = syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (*lateListener, error) {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if family == syscall.AF_INET6 && ta.IP == nil {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	var bound *net.TCPAddr
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		bound = &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *syscall.SockaddrInet6:
		bound = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &lateListener{fd: fd, addr: bound, opened: make(chan struct{}), closed: make(chan struct{})}, nil
}

// open starts listening; Accept then takes connections.
func (l *lateListener) open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return net.ErrClosed
	case <-l.opened:
		return nil
	default:
	}
	if l.broken != nil {
		return l.broken
	}
	if err := syscall.Listen(l.fd, syscall.SOMAXCONN); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	f := os.NewFile(uintptr(l.fd), "grpc listener")
	ln, err := net.FileListener(f) // a copy of the descriptor
	_ = f.Close()
	l.fd = -1 // closed with f
	if err != nil {
		l.broken = err // the port is lost: every later open says so
		return err
	}
	l.l = ln
	close(l.opened)
	return nil
}

// quiesce shrinks the listen backlog to nothing: the kernel then drops
// new connection attempts (their SYN is sent again a second later, and
// refused once the port is closed: a balancer passes such a call on),
// while Accept still takes the connections already queued. Closing a
// listener resets the connections in its queue, and nginx cannot pass on
// a gRPC call it has already sent on one; quiesce, a pause, then Close
// leaves next to nothing in the queue to reset.
func (l *lateListener) quiesce() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.opened:
	default:
		return
	}
	sc, ok := l.l.(syscall.Conn)
	if !ok {
		return
	}
	if raw, err := sc.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) { _ = syscall.Listen(int(fd), 0) })
	}
}

func (l *lateListener) Accept() (net.Conn, error) {
	select {
	case <-l.opened:
		return l.l.Accept()
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *lateListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		close(l.closed)
		select {
		case <-l.opened:
			err = l.l.Close()
		default:
			if l.fd >= 0 {
				err = syscall.Close(l.fd)
			}
		}
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (l *lateListener) Addr() net.Addr { return l.addr }
