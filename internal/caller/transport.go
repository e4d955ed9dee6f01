package caller

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// httpCallKey marks a call that came over HTTP (the REST gateway,
// forward-auth). It is unexported, so no network input can set it.
type httpCallKey struct{}

// HTTPCall describes the HTTP client of a call, as the transport that
// took it saw it. ClientAddr honours X-Forwarded-For only from trusted
// proxies (the gateway decides).
type HTTPCall struct {
	RemoteAddr string
	ClientAddr netip.Addr
	CertName   string // of a verified client certificate
	// ChainUnusable: a trusted proxy sent no usable forwarded chain; it
	// counts as an anonymous end client.
	ChainUnusable bool
}

// WithHTTPCall marks ctx as a call taken over HTTP by g's client.
func WithHTTPCall(ctx context.Context, g HTTPCall) context.Context {
	return context.WithValue(ctx, httpCallKey{}, g)
}

// HTTPCallOf returns the HTTP client recorded by WithHTTPCall; ok is false
// for a call taken over gRPC.
func HTTPCallOf(ctx context.Context) (HTTPCall, bool) {
	g, ok := ctx.Value(httpCallKey{}).(HTTPCall)
	return g, ok
}

// Transport names the transport that took the call: "rest" or "grpc".
func Transport(ctx context.Context) string {
	if _, ok := HTTPCallOf(ctx); ok {
		return "rest"
	}
	return "grpc"
}

// ClientAddr is the address of the call's client as its transport saw it
// (the address a call is limited by when it has no credential, and the one
// checked against a key's allowed addresses when no end client is named):
// the HTTP client for REST, else the gRPC peer. Metadata such as
// x-forwarded-for from a gRPC client is never believed.
func ClientAddr(ctx context.Context) netip.Addr {
	if g, ok := HTTPCallOf(ctx); ok {
		return g.ClientAddr
	}
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			return a.AddrPort().Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// CertName is the name in the call's verified client certificate: its
// common name, else its first DNS name ("" without one).
func CertName(ctx context.Context) string {
	if g, ok := HTTPCallOf(ctx); ok {
		return g.CertName
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	return CertNameOf(ti.State.VerifiedChains)
}

// CertNameOf is the name in the first verified chain (see CertName).
func CertNameOf(chains [][]*x509.Certificate) string {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return ""
	}
	c := chains[0][0]
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return ""
}

// PeerAddr is the remote address of the connection the call came on.
func PeerAddr(ctx context.Context) string {
	if g, ok := HTTPCallOf(ctx); ok {
		return g.RemoteAddr
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// EndClientUnknown reports whether the call came from a trusted proxy that
// named no usable end client (so ClientAddr is the proxy's own address).
func EndClientUnknown(ctx context.Context) bool {
	g, ok := HTTPCallOf(ctx)
	return ok && g.ChainUnusable
}

type gatewayCallKey struct{}

// WithGatewayCall marks a Validate that forward-auth or Envoy makes for the
// end client they forward for. peerIsEnd: the request names the gateway's
// own address as its end client (so no client_ip is sent).
func WithGatewayCall(ctx context.Context, peerIsEnd bool) context.Context {
	return context.WithValue(ctx, gatewayCallKey{}, peerIsEnd)
}

// GatewayCall reports whether ctx is a gateway's Validate (WithGatewayCall).
func GatewayCall(ctx context.Context) (gateway, peerIsEnd bool) {
	v, ok := ctx.Value(gatewayCallKey{}).(bool)
	return ok, v
}
