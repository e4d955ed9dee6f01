package middleware

import (
	"context"

	"google.golang.org/grpc"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// Bind returns srv as seen through intercept: each method runs the chain
// first, exactly as the gRPC server would run it. The REST gateway,
// forward-auth and Envoy call the service this way, in process: no
// loopback hop, and no transport can skip auth, limits, logging or metrics.
func Bind(srv keyservicev1.KeyServiceServer, intercept grpc.UnaryServerInterceptor) keyservicev1.KeyServiceServer {
	return &bound{srv: srv, intercept: intercept}
}

// chained calls a KeyServiceServer through the interceptor chain, as the
// gRPC server would. The gateway calls it in process: no loopback hop, and
// no REST call can skip auth, limits, logging or metrics.
//
// Every method of the service must be listed here; one that is not falls
// through to UnimplementedKeyServiceServer and is refused (fail closed), and
// TestGatewayWrapsEveryMethod catches it.
type bound struct {
	keyservicev1.UnimplementedKeyServiceServer
	srv       keyservicev1.KeyServiceServer
	intercept grpc.UnaryServerInterceptor
}

func invoke[Req, Resp any](ctx context.Context, c *bound, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	info := &grpc.UnaryServerInfo{Server: c.srv, FullMethod: method}
	out, err := c.intercept(ctx, req, info, func(ctx context.Context, r any) (any, error) { return h(ctx, r.(Req)) })
	if err != nil {
		var zero Resp
		return zero, err
	}
	return out.(Resp), nil
}

func (c *bound) Validate(ctx context.Context, r *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_Validate_FullMethodName, r, c.srv.Validate)
}

func (c *bound) CreateKey(ctx context.Context, r *keyservicev1.CreateKeyRequest) (*keyservicev1.CreateKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_CreateKey_FullMethodName, r, c.srv.CreateKey)
}

func (c *bound) GetKey(ctx context.Context, r *keyservicev1.GetKeyRequest) (*keyservicev1.GetKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_GetKey_FullMethodName, r, c.srv.GetKey)
}

func (c *bound) ListKeys(ctx context.Context, r *keyservicev1.ListKeysRequest) (*keyservicev1.ListKeysResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListKeys_FullMethodName, r, c.srv.ListKeys)
}

func (c *bound) RevokeKey(ctx context.Context, r *keyservicev1.RevokeKeyRequest) (*keyservicev1.RevokeKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_RevokeKey_FullMethodName, r, c.srv.RevokeKey)
}

func (c *bound) UpdateKey(ctx context.Context, r *keyservicev1.UpdateKeyRequest) (*keyservicev1.UpdateKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_UpdateKey_FullMethodName, r, c.srv.UpdateKey)
}

func (c *bound) RotateKey(ctx context.Context, r *keyservicev1.RotateKeyRequest) (*keyservicev1.RotateKeyResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_RotateKey_FullMethodName, r, c.srv.RotateKey)
}

func (c *bound) ListAuditEvents(ctx context.Context, r *keyservicev1.ListAuditEventsRequest) (*keyservicev1.ListAuditEventsResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListAuditEvents_FullMethodName, r, c.srv.ListAuditEvents)
}

func (c *bound) CreateKeyspace(ctx context.Context, r *keyservicev1.CreateKeyspaceRequest) (*keyservicev1.CreateKeyspaceResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_CreateKeyspace_FullMethodName, r, c.srv.CreateKeyspace)
}

func (c *bound) GetKeyspace(ctx context.Context, r *keyservicev1.GetKeyspaceRequest) (*keyservicev1.GetKeyspaceResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_GetKeyspace_FullMethodName, r, c.srv.GetKeyspace)
}

func (c *bound) ListKeyspaces(ctx context.Context, r *keyservicev1.ListKeyspacesRequest) (*keyservicev1.ListKeyspacesResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListKeyspaces_FullMethodName, r, c.srv.ListKeyspaces)
}

func (c *bound) UpdateKeyspace(ctx context.Context, r *keyservicev1.UpdateKeyspaceRequest) (*keyservicev1.UpdateKeyspaceResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_UpdateKeyspace_FullMethodName, r, c.srv.UpdateKeyspace)
}

func (c *bound) CreateCredential(ctx context.Context, r *keyservicev1.CreateCredentialRequest) (*keyservicev1.CreateCredentialResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_CreateCredential_FullMethodName, r, c.srv.CreateCredential)
}

func (c *bound) ListCredentials(ctx context.Context, r *keyservicev1.ListCredentialsRequest) (*keyservicev1.ListCredentialsResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListCredentials_FullMethodName, r, c.srv.ListCredentials)
}

func (c *bound) RevokeCredential(ctx context.Context, r *keyservicev1.RevokeCredentialRequest) (*keyservicev1.RevokeCredentialResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_RevokeCredential_FullMethodName, r, c.srv.RevokeCredential)
}

func (c *bound) AddCredits(ctx context.Context, r *keyservicev1.AddCreditsRequest) (*keyservicev1.AddCreditsResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_AddCredits_FullMethodName, r, c.srv.AddCredits)
}

func (c *bound) ReportUsage(ctx context.Context, r *keyservicev1.ReportUsageRequest) (*keyservicev1.ReportUsageResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ReportUsage_FullMethodName, r, c.srv.ReportUsage)
}

func (c *bound) GetUsage(ctx context.Context, r *keyservicev1.GetUsageRequest) (*keyservicev1.GetUsageResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_GetUsage_FullMethodName, r, c.srv.GetUsage)
}

func (c *bound) CreateOwner(ctx context.Context, r *keyservicev1.CreateOwnerRequest) (*keyservicev1.CreateOwnerResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_CreateOwner_FullMethodName, r, c.srv.CreateOwner)
}

func (c *bound) GetOwner(ctx context.Context, r *keyservicev1.GetOwnerRequest) (*keyservicev1.GetOwnerResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_GetOwner_FullMethodName, r, c.srv.GetOwner)
}

func (c *bound) ListOwners(ctx context.Context, r *keyservicev1.ListOwnersRequest) (*keyservicev1.ListOwnersResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_ListOwners_FullMethodName, r, c.srv.ListOwners)
}

func (c *bound) UpdateOwner(ctx context.Context, r *keyservicev1.UpdateOwnerRequest) (*keyservicev1.UpdateOwnerResponse, error) {
	return invoke(ctx, c, keyservicev1.KeyService_UpdateOwner_FullMethodName, r, c.srv.UpdateOwner)
}

// WatchKeyEvents runs the whole stream inside the chain, as one call: the
// chain authenticates it, limits its caller, logs and counts it, and maps
// its error; the stream sees the chain's context (the caller's identity).
func (c *bound) WatchKeyEvents(r *keyservicev1.WatchKeyEventsRequest, ss grpc.ServerStreamingServer[keyservicev1.WatchKeyEventsResponse]) error {
	_, err := invoke(ss.Context(), c, keyservicev1.KeyService_WatchKeyEvents_FullMethodName, r,
		func(ctx context.Context, r *keyservicev1.WatchKeyEventsRequest) (struct{}, error) {
			return struct{}{}, c.srv.WatchKeyEvents(r, streamIn[keyservicev1.WatchKeyEventsResponse]{ss, ctx})
		})
	return err
}

// streamIn is a server stream whose context is the chain's.
type streamIn[T any] struct {
	grpc.ServerStreamingServer[T]
	ctx context.Context
}

func (s streamIn[T]) Context() context.Context { return s.ctx }

// BindStreams is srv for the gRPC server, whose unary interceptor runs
// the chain for unary methods: its streaming methods run the chain as
// Bind's do (a gRPC stream interceptor would not run it).
func BindStreams(srv keyservicev1.KeyServiceServer, intercept grpc.UnaryServerInterceptor) keyservicev1.KeyServiceServer {
	return streams{KeyServiceServer: srv, b: &bound{srv: srv, intercept: intercept}}
}

type streams struct {
	keyservicev1.KeyServiceServer
	b *bound
}

func (s streams) WatchKeyEvents(r *keyservicev1.WatchKeyEventsRequest, ss grpc.ServerStreamingServer[keyservicev1.WatchKeyEventsResponse]) error {
	return s.b.WatchKeyEvents(r, ss)
}
