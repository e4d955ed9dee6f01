package server

import (
	"context"
	"net/http"
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// chained calls a KeyServiceServer through the interceptor chain, as the
// gRPC server would. The gateway calls it in process: no loopback hop, and
// no REST call can skip auth, limits, logging or metrics.
//
// Every method of the service must be listed here; one that is not falls
// through to UnimplementedKeyServiceServer and is refused (fail closed), and
// TestGatewayWrapsEveryMethod catches it.
type chained struct {
	keyservicev1.UnimplementedKeyServiceServer
	srv       keyservicev1.KeyServiceServer
	intercept grpc.UnaryServerInterceptor
}

func invoke[Req, Resp any](ctx context.Context, c *chained, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	info := &grpc.UnaryServerInfo{Server: c.srv, FullMethod: method}
	out, err := c.intercept(ctx, req, info, func(ctx context.Context, r any) (any, error) { return h(ctx, r.(Req)) })
	if err != nil {
		var zero Resp
		return zero, err
	}
	return out.(Resp), nil
}

func (c *chained) Validate(ctx context.Context, r *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_Validate_FullMethodName, r, c.srv.Validate)
}

func (c *chained) CreateKey(ctx context.Context, r *keyservicev1.CreateKeyRequest) (*keyservicev1.CreateKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_CreateKey_FullMethodName, r, c.srv.CreateKey)
}

func (c *chained) GetKey(ctx context.Context, r *keyservicev1.GetKeyRequest) (*keyservicev1.GetKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_GetKey_FullMethodName, r, c.srv.GetKey)
}

func (c *chained) ListKeys(ctx context.Context, r *keyservicev1.ListKeysRequest) (*keyservicev1.ListKeysResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListKeys_FullMethodName, r, c.srv.ListKeys)
}

func (c *chained) RevokeKey(ctx context.Context, r *keyservicev1.RevokeKeyRequest) (*keyservicev1.RevokeKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_RevokeKey_FullMethodName, r, c.srv.RevokeKey)
}

// newGateway returns the REST handler for the service. JSON always carries
// every field (valid and code included, even when false or zero), uses the
// proto field names, and rejects unknown fields.
func newGateway(ctx context.Context, srv keyservicev1.KeyServiceServer, intercept grpc.UnaryServerInterceptor, maxBody int64) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		runtime.WithIncomingHeaderMatcher(func(h string) (string, bool) {
			if textproto.CanonicalMIMEHeaderKey(h) == "X-Request-Id" {
				return requestIDHeader, true
			}
			return runtime.DefaultHeaderMatcher(h)
		}),
		runtime.WithOutgoingHeaderMatcher(func(h string) (string, bool) {
			if h == requestIDHeader {
				return "X-Request-Id", true
			}
			return "", false
		}),
	)
	if err := keyservicev1.RegisterKeyServiceHandlerServer(ctx, mux, &chained{srv: srv, intercept: intercept}); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r.WithContext(withGateway(r.Context(), r.RemoteAddr)))
	}), nil
}
