package middleware

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Streaming calls on the gRPC port (health Watch, reflection) stay open
// once their first message has arrived, and a connection with an open
// stream is never idle: without a bound, one client could hold streams
// (and their memory) without end.
const (
	// StreamsPerAddr is the most streaming calls one client address holds
	// open at once; StreamsTotal the most for the whole process.
	StreamsPerAddr = 16
	StreamsTotal   = 512
)

// Streams counts the streaming calls open per client address (IPv6: its
// /64) and in all, for every transport that serves them (gRPC, and the
// REST gateway's event stream), so one bound holds across both.
type Streams struct {
	perAddr, total int
	mu             sync.Mutex
	open           int
	byAddr         map[netip.Addr]int
}

// NewStreams bounds streams at perAddr per client address and total.
func NewStreams(perAddr, total int) *Streams {
	return &Streams{perAddr: perAddr, total: total, byAddr: map[netip.Addr]int{}}
}

// Take opens a stream for addr: false while addr holds perAddr, or the
// process total, open; release closes it.
func (s *Streams) Take(addr netip.Addr) (release func(), ok bool) {
	if addr.Is6() && !addr.Is4In6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open >= s.total || s.byAddr[addr] >= s.perAddr {
		return nil, false
	}
	s.open++
	s.byAddr[addr]++
	return func() {
		s.mu.Lock()
		s.open--
		if s.byAddr[addr]--; s.byAddr[addr] <= 0 {
			delete(s.byAddr, addr)
		}
		s.mu.Unlock()
	}, true
}

// ErrTooManyStreams is the refusal of a stream over the bound.
var ErrTooManyStreams = status.Error(codes.ResourceExhausted, "too many streaming calls open: close one first")

// Interceptor refuses a streaming call with RESOURCE_EXHAUSTED while its
// client address holds perAddr open ones, or the process total of them.
func (s *Streams) Interceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		release, ok := s.Take(streamAddr(ss.Context()))
		if !ok {
			return ErrTooManyStreams
		}
		defer release()
		return handler(srv, ss)
	}
}

// LimitStreams is NewStreams(perAddr, total).Interceptor().
func LimitStreams(perAddr, total int) grpc.StreamServerInterceptor {
	return NewStreams(perAddr, total).Interceptor()
}

func streamAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			a, _ := netip.AddrFromSlice(tcp.IP)
			return a.Unmap()
		}
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}
