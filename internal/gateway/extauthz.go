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
	"google.golang.org/protobuf/types/known/structpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/authanswer"
	"github.com/keyservice/keyservice/internal/caller"
)

// ExtAuthz returns envoy.service.auth.v3.Authorization, served on the gRPC
// port for Envoy and Istio. The key is read from the request's headers as
// Envoy sends them, the string map or (encode_raw_headers) header_map;
// the end client is the source address, the scopes a route needs are the
// required_scopes context extension, and Envoy's own caller token is in
// the call's gRPC metadata, never among the request's headers. An allowed
// request goes on without the key header, with the key's identity as
// headers and as dynamic metadata. svc must already run through the
// interceptor chain.
func ExtAuthz(svc keyservicev1.KeyServiceServer, keyHeader string) authv3.AuthorizationServer {
	return &extAuthz{svc: svc, keyHeader: keyHeader}
}

type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	svc       keyservicev1.KeyServiceServer
	keyHeader string
}

func (x *extAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	headers := envoyHeaders(req.GetAttributes().GetRequest().GetHttp())
	get := func(name string) string { return headers[strings.ToLower(name)] }
	key := authanswer.KeyFrom(get, x.keyHeader)
	var d authanswer.Decision
	if key == "" {
		d = authanswer.Missing(x.keyHeader)
	} else {
		ext := req.GetAttributes().GetContextExtensions()
		vreq := &keyservicev1.ValidateRequest{Key: key, RequiredScopes: splitScopes(ext[RequiredScopesExtension]), Keyspace: ext[KeyspaceExtension]}
		if a, err := netip.ParseAddr(req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()); err == nil {
			vreq.ClientIp = a.Unmap().String()
		}
		var stream runtime.ServerTransportStream
		vctx := grpc.NewContextWithServerTransportStream(caller.WithGatewayCall(ctx, false), &stream)
		resp, err := x.svc.Validate(vctx, vreq)
		d = authanswer.Decide(resp, err, x.keyHeader, stream.Header())
	}
	var hv []*corev3.HeaderValueOption
	for k, v := range d.Headers {
		hv = append(hv, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}})
	}
	if d.Status == http.StatusOK {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:         hv,
				HeadersToRemove: []string{strings.ToLower(x.keyHeader)},
			}},
			DynamicMetadata: identityMetadata(d.Key),
		}, nil
	}
	code := codes.PermissionDenied
	switch d.Status {
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusTooManyRequests, http.StatusPaymentRequired:
		// Over a rate limit, or out of credits: the status message names
		// which (and whose), as the reason.
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: d.Reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: hv,
		}},
	}, nil
}

// envoyHeaders is the request's headers as Envoy's string map has them,
// whichever way Envoy sent them, so that both answer alike. The string map
// (the default) has lower-case names, the values of a repeated header
// joined with "," and bytes that are not UTF-8 replaced by "!". With
// encode_raw_Headers: true Envoy sends header_map instead, one entry per
// header line with its raw bytes; it is read here into that same shape.
// So a key header sent twice is one value, not a key, in both modes.
func envoyHeaders(h *authv3.AttributeContext_HttpRequest) map[string]string {
	hm := h.GetHeaderMap()
	if hm == nil {
		return h.GetHeaders()
	}
	out := make(map[string]string, len(hm.GetHeaders()))
	for _, e := range hm.GetHeaders() {
		// Envoy fills raw_value; value is the field's string twin.
		v := string(e.GetRawValue())
		if v == "" {
			v = e.GetValue()
		}
		// A run of bad bytes becomes one "!" (Envoy writes one per byte):
		// either way the value is no key.
		v = strings.ToValidUTF8(v, "!")
		// Only ASCII letters fold, as Envoy lower-cases names
		// (strings.ToLower would also fold the Kelvin sign into a "k").
		name := strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, e.GetKey())
		if prev, ok := out[name]; ok {
			v = prev + "," + v
		}
		out[name] = v
	}
	return out
}

// identityMetadata is the key's identity for the filters after ext_authz
// (rate limiting, RBAC, access logs); Envoy files it under the namespace
// envoy.filters.http.ext_authz. Owner and name as stored (X-Key-Owner
// percent-encodes), scopes as a list, name only when the key has one.
// When keyspaces land, the key's keyspace belongs here too.
func identityMetadata(k *keyservicev1.Key) *structpb.Struct {
	scopes := make([]*structpb.Value, len(k.GetScopes()))
	for i, s := range k.GetScopes() {
		scopes[i] = structpb.NewStringValue(s)
	}
	f := map[string]*structpb.Value{
		"key_id": structpb.NewStringValue(k.GetId()),
		"owner":  structpb.NewStringValue(k.GetOwner()),
		"scopes": structpb.NewListValue(&structpb.ListValue{Values: scopes}),
	}
	if k.GetName() != "" {
		f["name"] = structpb.NewStringValue(k.GetName())
	}
	return &structpb.Struct{Fields: f}
}
