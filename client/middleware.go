package client

import (
	"context"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/authanswer"
)

type identityKey struct{}

// KeyFrom is the key record the middleware or the interceptor verified
// for this request (nil when none was).
func KeyFrom(ctx context.Context) *keyservicev1.Key {
	k, _ := ctx.Value(identityKey{}).(*keyservicev1.Key)
	return k
}

// MiddlewareOption configures HTTPMiddleware and UnaryServerInterceptor.
type MiddlewareOption func(*mwOptions)

type mwOptions struct {
	header string
	verify []VerifyOption
	peer   bool
}

// Header reads the key from this header: "Authorization: Bearer <key>"
// (the default), or any other header's whole value ("X-API-Key").
func Header(name string) MiddlewareOption { return func(o *mwOptions) { o.header = name } }

// Require applies Verify options to every request: WithScopes for a
// route's scopes, InKeyspace, WithCost.
func Require(opts ...VerifyOption) MiddlewareOption {
	return func(o *mwOptions) { o.verify = append(o.verify, opts...) }
}

// SendPeerAddress passes the connection's remote address as the end
// client (FromAddress), for keys pinned to addresses and the service's
// failed-attempt guard. Off by default: behind a proxy it is the proxy's.
func SendPeerAddress() MiddlewareOption { return func(o *mwOptions) { o.peer = true } }

func mwOpts(opts []MiddlewareOption) mwOptions {
	o := mwOptions{header: "Authorization"}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// HTTPMiddleware refuses a request without a valid key with the answer
// keyservice's forward-auth gives (401 with WWW-Authenticate, 402, 403,
// 429 with Retry-After and RateLimit-*, 503 when keyservice cannot answer,
// 401 with error="invalid_caller" when it refuses this client's own
// credential: a configuration error);
// a request with one goes on without the key header, with the key's
// record in its context (KeyFrom).
func (c *Client) HTTPMiddleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	o := mwOpts(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := authanswer.KeyFrom(r.Header.Get, o.header)
			var d authanswer.Decision
			if key == "" {
				d = authanswer.Missing(o.header)
			} else {
				vo := o.verify
				if o.peer {
					if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
						vo = append(vo[:len(vo):len(vo)], FromAddress(host))
					}
				}
				res, err := c.Verify(r.Context(), key, vo...)
				d = c.decide(res, err, o.header)
			}
			if d.Status == http.StatusOK {
				r2 := r.WithContext(context.WithValue(r.Context(), identityKey{}, d.Key))
				r2.Header = r.Header.Clone()
				r2.Header.Del(o.header)
				next.ServeHTTP(w, r2)
				return
			}
			for k, v := range d.Headers {
				w.Header().Set(k, v)
			}
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(d.Status)
			_, _ = w.Write([]byte(`{"error":"` + strings.ToLower(http.StatusText(d.Status)) + `"}` + "\n"))
		})
	}
}

// decide is forward-auth's answer for a Verify result.
func (c *Client) decide(res Result, err error, header string) authanswer.Decision {
	if err != nil {
		if status.Code(err) == codes.DeadlineExceeded {
			err = status.Error(codes.Unavailable, "keyservice did not answer in time")
		}
		return authanswer.Decide(nil, err, header, nil)
	}
	resp := res.Response
	if resp == nil { // from the cache: VALID
		resp = &keyservicev1.ValidateResponse{Valid: true, Code: res.Code, Key: res.Key}
	}
	return authanswer.Decide(resp, nil, header, nil)
}

// UnaryServerInterceptor is for Go gRPC services whose callers send a key
// in metadata (the header's name, lower-cased: "authorization" with
// "Bearer <key>" by default): a call without a valid key is refused with
// UNAUTHENTICATED, PERMISSION_DENIED (scopes, address), RESOURCE_EXHAUSTED
// (limits, credits) or UNAVAILABLE; a call with one goes on with the key's
// record in its context (KeyFrom), and without the key in its metadata.
func (c *Client) UnaryServerInterceptor(opts ...MiddlewareOption) grpc.UnaryServerInterceptor {
	o := mwOpts(opts)
	name := strings.ToLower(o.header)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		key := authanswer.KeyFrom(func(string) string {
			if v := md.Get(name); len(v) == 1 {
				return v[0]
			}
			return ""
		}, o.header)
		if key == "" {
			return nil, status.Error(codes.Unauthenticated, "an API key is required")
		}
		res, err := c.Verify(ctx, key, o.verify...)
		if err != nil {
			return nil, status.Error(codes.Unavailable, "the key could not be checked; retry later")
		}
		if !res.Valid {
			return nil, status.Error(grpcCodeOf(authanswer.Decide(res.Response, nil, o.header, nil).Status), "API key refused: "+strings.TrimPrefix(res.Code.String(), "CODE_"))
		}
		md = md.Copy()
		md.Delete(name)
		ctx = metadata.NewIncomingContext(context.WithValue(ctx, identityKey{}, res.Key), md)
		return handler(ctx, req)
	}
}

// grpcCodeOf is the gRPC code for a refusal's HTTP status, as Envoy's
// ext_authz answer maps them.
func grpcCodeOf(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusTooManyRequests, http.StatusPaymentRequired:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Unauthenticated
}
