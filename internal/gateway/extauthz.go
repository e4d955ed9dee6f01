package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/middleware"
)

// ExtAuthz returns envoy.service.auth.v3.Authorization, served on the gRPC
// port for Envoy and Istio. The key header is removed before the request
// goes on. svc must already run through the interceptor chain.
func ExtAuthz(svc keyservicev1.KeyServiceServer, keyHeader string) authv3.AuthorizationServer {
	return &extAuthz{svc: svc, keyHeader: keyHeader}
}

type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	svc       keyservicev1.KeyServiceServer
	keyHeader string
}

func (x *extAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	headers := req.GetAttributes().GetRequest().GetHttp().GetHeaders() // lower-case names
	get := func(name string) string { return headers[strings.ToLower(name)] }
	key := keyFrom(get, x.keyHeader)
	var d authDecision
	if key == "" {
		d = authDecision{status: http.StatusUnauthorized, headers: map[string]string{"WWW-Authenticate": challengeFor(x.keyHeader)}}
	} else {
		vreq := &keyservicev1.ValidateRequest{Key: key, RequiredScopes: splitScopes(req.GetAttributes().GetContextExtensions()[RequiredScopesExtension])}
		if a, err := netip.ParseAddr(req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()); err == nil {
			vreq.ClientIp = a.Unmap().String()
		}
		var stream runtime.ServerTransportStream
		vctx := grpc.NewContextWithServerTransportStream(middleware.WithGatewayCall(ctx, false), &stream)
		resp, err := x.svc.Validate(vctx, vreq)
		d = decide(resp, err, x.keyHeader, stream.Header())
	}
	var hv []*corev3.HeaderValueOption
	for k, v := range d.headers {
		hv = append(hv, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}})
	}
	if d.status == http.StatusOK {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:         hv,
				HeadersToRemove: []string{strings.ToLower(x.keyHeader)},
			}},
		}, nil
	}
	code := codes.PermissionDenied
	switch d.status {
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.status)},
			Headers: hv,
		}},
	}, nil
}
