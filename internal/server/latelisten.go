//go:build linux

package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	// syscall.SOMAXCONN is 128; the kernel lowers a larger backlog to its
	// own limit (net.core.somaxconn, 4096 by default), as net.Listen asks.
	// A full queue drops a handshake's last ACK while the client believes
	// itself connected (stopTaking).
	if err := syscall.Listen(l.fd, listenBacklog); err != nil {
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

// listenBacklog is asked of listen(2); the kernel caps it.
const listenBacklog = 65535

// stopTaking readies the port to close without resetting a connection a
// client has already sent a call on; the caller closes it after. Closing a
// listener resets the connections in its accept queue, and nginx cannot
// pass on a gRPC call it has sent on one (it does not buffer gRPC bodies).
// So a filter on the listening socket first drops every new connection's
// SYN (the client sends it again a second later and is refused once the
// port is closed; a balancer passes such a call on), while the handshakes
// already under way complete and Accept takes every connection queued.
// stopTaking returns once grace has passed and the queue is empty
// (TCP_INFO), at most five graces after it began; and why the filter could
// not be attached, if it could not. (Connections that come up meanwhile
// inherit the filter; an established connection is never sent a bare SYN.)
//
// Shrinking the backlog to nothing instead (the first way, kept where the
// filter cannot be attached) is not enough: a client whose handshake's last
// ACK meets a full queue is dropped by the server but believes itself
// connected, sends its call, and is reset when the port closes
// (TestLateListenerClosesWithoutResettingACall).
func (l *lateListener) stopTaking(grace time.Duration) error {
	l.mu.Lock()
	var raw syscall.RawConn
	select {
	case <-l.opened:
		if sc, ok := l.l.(syscall.Conn); ok {
			raw, _ = sc.SyscallConn()
		}
	default:
	}
	l.mu.Unlock()
	if raw == nil {
		return nil
	}
	began := time.Now()
	var filtered error
	if err := raw.Control(func(fd uintptr) {
		if filtered = dropSYNs(int(fd)); filtered != nil {
			_ = syscall.Listen(int(fd), 0)
		}
	}); err != nil {
		return nil // closed already
	}
	time.Sleep(grace) // handshakes under way complete, Accept takes them
	for deadline := began.Add(5 * grace); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		n := -1
		if err := raw.Control(func(fd uintptr) { n = acceptQueue(int(fd)) }); err != nil || n <= 0 {
			break // empty, or closed, or the kernel does not say
		}
	}
	return filtered
}

// synFilter is a classic BPF socket filter that drops TCP segments with
// SYN set and ACK clear (a new connection's first) and passes the rest.
// On a TCP socket the filter sees the segment from its TCP header: the
// flags are byte 13.
var synFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13},
	{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x12}, // SYN|ACK
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x02, Jt: 1},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // pass
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},          // drop
}

func dropSYNs(fd int) error {
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(synFilter)), Filter: &synFilter[0]})
}

// acceptQueue is how many connections wait to be accepted on a listening
// socket (TCP_INFO's unacked field holds it for a listener), -1 when the
// kernel does not say.
func acceptQueue(fd int) int {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return -1
	}
	return int(info.Unacked)
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
