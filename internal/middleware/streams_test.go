package middleware_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/keyservice/keyservice/internal/middleware"
)

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

// TestStreamsAreBoundedPerAddressAndInAll: open streaming calls beyond the
// per-address bound are refused for that address only, and beyond the
// total for everyone; a closed one frees its place.
func TestStreamsAreBoundedPerAddressAndInAll(t *testing.T) {
	limit := middleware.LimitStreams(2, 3)
	from := func(ip string) grpc.ServerStream {
		return fakeStream{ctx: peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}})}
	}
	release := make(chan struct{})
	started := make(chan error, 10)
	var held sync.WaitGroup
	open := func(ip string) {
		held.Go(func() {
			_ = limit(nil, from(ip), nil, func(any, grpc.ServerStream) error {
				started <- nil
				<-release
				return nil
			})
		})
		<-started
	}
	refused := func(ip string) bool {
		err := limit(nil, from(ip), nil, func(any, grpc.ServerStream) error { return nil })
		return status.Code(err) == codes.ResourceExhausted
	}
	open("127.0.0.1")
	open("127.0.0.1")
	if !refused("127.0.0.1") {
		t.Error("a third stream from one address was not refused")
	}
	open("127.0.0.2")
	if !refused("127.0.0.3") {
		t.Error("a stream past the total was not refused")
	}
	close(release)
	held.Wait()
	if refused("127.0.0.3") || refused("127.0.0.1") {
		t.Error("a stream was refused after the held ones closed")
	}
}
