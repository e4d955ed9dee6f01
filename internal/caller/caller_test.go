package caller_test

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/peer"

	"github.com/keyservice/keyservice/internal/caller"
)

func TestMayForwardTrustsCredentialsAndTrustedProxiesOnly(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	proxy := netip.MustParseAddr("10.1.2.3")
	tests := []struct {
		name string
		id   caller.Identity
		want bool
	}{
		{"caller token", caller.Identity{Kind: caller.KindToken, Name: "app"}, true},
		{"client certificate", caller.Identity{Kind: caller.KindCert, Name: "app"}, true},
		{"admin", caller.Identity{Kind: caller.KindAdmin, Name: "admin"}, true},
		{"trusted proxy", caller.Identity{Kind: caller.KindAddr, Addr: proxy}, true},
		{"trusted proxy without a usable chain", caller.Identity{Kind: caller.KindAddr, Addr: proxy, Anonymous: true}, false},
		{"other address", caller.Identity{Kind: caller.KindAddr, Addr: netip.MustParseAddr("192.0.2.1")}, false},
	}
	for _, tt := range tests {
		if got := caller.MayForward(tt.id, trusted); got != tt.want {
			t.Errorf("%s: MayForward = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIdentityAndActorTravelInTheContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := caller.IdentityFrom(ctx); ok {
		t.Fatal("an identity in an empty context")
	}
	id := caller.Identity{Kind: caller.KindToken, Name: "billing"}
	got, ok := caller.IdentityFrom(caller.WithIdentity(ctx, id))
	if !ok || got != id || got.String() != "token:billing" {
		t.Fatalf("IdentityFrom = %v, %v; want %v", got, ok, id)
	}
	if a := caller.ActorFrom(caller.WithActor(ctx, "ops")); a != "ops" {
		t.Fatalf("ActorFrom = %q, want ops", a)
	}
	if a := caller.ActorFrom(ctx); a != "" {
		t.Fatalf("ActorFrom without an admin = %q, want empty", a)
	}
}

func TestClientAddrIsTheHTTPClientOverTheGatewayElseThePeer(t *testing.T) {
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 5000}}
	ctx := peer.NewContext(context.Background(), p)
	if a := caller.ClientAddr(ctx); a != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("gRPC peer: ClientAddr = %v, want 127.0.0.1 (unmapped)", a)
	}
	if tr := caller.Transport(ctx); tr != "grpc" {
		t.Fatalf("Transport = %q, want grpc", tr)
	}
	client := netip.MustParseAddr("198.51.100.7")
	rest := caller.WithHTTPCall(ctx, caller.HTTPCall{RemoteAddr: "127.0.0.1:5000", ClientAddr: client, ChainUnusable: true})
	if a := caller.ClientAddr(rest); a != client {
		t.Fatalf("REST: ClientAddr = %v, want the HTTP client %v", a, client)
	}
	if tr, pa := caller.Transport(rest), caller.PeerAddr(rest); tr != "rest" || pa != "127.0.0.1:5000" {
		t.Fatalf("REST: Transport, PeerAddr = %q, %q", tr, pa)
	}
	if !caller.EndClientUnknown(rest) || caller.EndClientUnknown(ctx) {
		t.Fatal("EndClientUnknown must be true only for an HTTP call whose chain was unusable")
	}
}
