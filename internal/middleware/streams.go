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

// LimitStreams refuses a streaming call with RESOURCE_EXHAUSTED while its
// client address (IPv6: its /64) holds perAddr open ones, or the process
// total of them.
func LimitStreams(perAddr, total int) grpc.StreamServerInterceptor {
	var mu sync.Mutex
	open := 0
	byAddr := map[netip.Addr]int{}
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		addr := streamAddr(ss.Context())
		mu.Lock()
		if open >= total || byAddr[addr] >= perAddr {
			mu.Unlock()
			return status.Error(codes.ResourceExhausted, "too many streaming calls open: close one first")
		}
		open++
		byAddr[addr]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			open--
			if byAddr[addr]--; byAddr[addr] <= 0 {
				delete(byAddr, addr)
			}
			mu.Unlock()
		}()
		return handler(srv, ss)
	}
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
