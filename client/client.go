// Package client is keyservice's Go kit: a connection with sane defaults,
// Verify (is this key valid, and who is it?), HTTP middleware and a gRPC
// server interceptor for Go services that receive keys, and an optional
// in-process cache of answers kept in step by WatchKeyEvents.
//
//	c, err := client.New("keyservice:8081", client.WithToken(os.Getenv("KEYSERVICE_TOKEN")))
//	res, err := c.Verify(ctx, presentedKey)
//	if err == nil && res.Valid { … res.Key.GetOwner() … }
//
// A wrong key is an answer (Valid false, Code says why), never an error:
// Verify returns an error only when no answer could be had (the service
// unavailable, the caller's own credential refused or over its limit).
// Refuse the request then (fail closed).
package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// Defaults of New.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultRetries    = 2
	DefaultStaleAfter = 3 * time.Second
	DefaultMaxAge     = 5 * time.Minute
)

type options struct {
	token      string
	tls        *tls.Config
	timeout    time.Duration
	retries    int
	cache      bool
	staleAfter time.Duration
	maxAge     time.Duration
	dial       []grpc.DialOption
}

// Option configures New.
type Option func(*options)

// WithToken sends a caller credential (a stored credential with
// keys.validate, or a caller token) as "authorization: Bearer <token>".
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS (nil: plaintext, the default).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithTimeout bounds each Verify (and each try of it) when the context
// has no earlier deadline; 5 s by default.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetries is how many more times a Verify that spends nothing is
// tried after UNAVAILABLE (2 by default; 0: never). A Verify with a
// cost > 0 … or without WithCost, which spends 1 … is tried once more
// only when the service said UNAVAILABLE before reading it (the
// connection was not ready): a retry must not spend a budget twice.
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithCache keeps the answers the service marks cacheable in process,
// kept in step by a WatchKeyEvents stream: a key answered once is answered
// again without a call (well under 1 µs) until an event names it, the
// stream has been silent for staleAfter (3 s when 0: calls then go to
// the service until it is back), or maxAge passes (5 min when 0).
func WithCache(staleAfter, maxAge time.Duration) Option {
	return func(o *options) { o.cache, o.staleAfter, o.maxAge = true, staleAfter, maxAge }
}

// WithDialOptions adds gRPC dial options (interceptors, a resolver, …).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Client verifies keys. It is safe for concurrent use; make one and keep
// it.
type Client struct {
	conn   *grpc.ClientConn
	rpc    keyservicev1.KeyServiceClient
	o      options
	md     metadata.MD
	cache  *cache
	cancel context.CancelFunc
	done   chan struct{}
}

// New connects to a keyservice gRPC address (host:port). The connection
// is made lazily and kept alive; Close ends it.
func New(addr string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, retries: DefaultRetries}
	for _, opt := range opts {
		opt(&o)
	}
	if o.staleAfter <= 0 {
		o.staleAfter = DefaultStaleAfter
	}
	if o.maxAge <= 0 {
		o.maxAge = DefaultMaxAge
	}
	tc := insecure.NewCredentials()
	if o.tls != nil {
		tc = credentials.NewTLS(o.tls)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(tc),
		// keyservice's server accepts pings every 10 s at most.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, o.dial...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, rpc: keyservicev1.NewKeyServiceClient(conn), o: o}
	if o.token != "" {
		c.md = metadata.Pairs("authorization", "Bearer "+o.token)
	}
	if o.cache {
		c.cache = newCache(o.staleAfter, o.maxAge)
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.watch(ctx)
	}
	return c, nil
}

// Close stops the cache's stream and closes the connection.
func (c *Client) Close() error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
		c.cache.heard.Store(0)
		c.cache.clear()
	}
	return c.conn.Close()
}

// Raw is the generated client on the same connection, for admin calls
// (with a credential that holds their permissions).
func (c *Client) Raw() keyservicev1.KeyServiceClient { return c.rpc }

// Outgoing adds the client's credential to ctx, for calls made with Raw.
func (c *Client) Outgoing(ctx context.Context) context.Context {
	if c.md == nil {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, c.md)
}

// Result is the service's answer about a key.
type Result struct {
	// Valid: the key may be used (Code is CODE_VALID).
	Valid bool
	Code  keyservicev1.Code
	// Key is the key's record (id, owner, name, scopes, metadata…) when
	// the key exists, except on CODE_FORBIDDEN. Shared: do not modify it.
	Key *keyservicev1.Key
	// Cached: answered from the in-process cache (WithCache).
	Cached bool
	// Response is the whole answer (budgets, credits, refused_by); nil
	// when Cached.
	Response *keyservicev1.ValidateResponse
}

// VerifyOption narrows one Verify.
type VerifyOption func(*keyservicev1.ValidateRequest)

// WithScopes requires scopes of the key (CODE_INSUFFICIENT_SCOPE if any is
// missing).
func WithScopes(scopes ...string) VerifyOption {
	return func(r *keyservicev1.ValidateRequest) { r.RequiredScopes = append(r.RequiredScopes, scopes...) }
}

// InKeyspace requires the key to be of a keyspace (name or id).
func InKeyspace(ks string) VerifyOption {
	return func(r *keyservicev1.ValidateRequest) { r.Keyspace = ks }
}

// FromAddress names the end client that presented the key (its address:
// the failed-attempt guard and allowed_cidrs use it).
func FromAddress(ip string) VerifyOption {
	return func(r *keyservicev1.ValidateRequest) { r.ClientIp = ip }
}

// WithCost spends n of the key's budgets (1 when not given; 0 checks
// without spending).
func WithCost(n int32) VerifyOption {
	return func(r *keyservicev1.ValidateRequest) { r.Cost = &n }
}

// Error is returned when no answer could be had: Code is the gRPC code
// (Unavailable, DeadlineExceeded, ResourceExhausted for the caller's own
// limit, Unauthenticated or PermissionDenied for its credential,
// InvalidArgument for a request the service refused).
type Error struct {
	Code codes.Code
	err  error
}

func (e *Error) Error() string { return "keyservice: " + e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// GRPCStatus lets status.Code and status.FromError read it.
func (e *Error) GRPCStatus() *status.Status { return status.Convert(e.err) }

// Verify asks whether key is valid. The key is never logged, and never
// put in an error.
func (c *Client) Verify(ctx context.Context, key string, opts ...VerifyOption) (Result, error) {
	var h [32]byte
	if c.cache != nil {
		h = sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
		if len(opts) == 0 {
			if r, ok := c.cache.get(&h, "", nil); ok {
				return r, nil
			}
		}
	}
	req := &keyservicev1.ValidateRequest{Key: key}
	for _, o := range opts {
		o(req)
	}
	// A cacheable answer is one no budget and no address decides: the
	// cost and the end client's address do not change it.
	if c.cache != nil && len(opts) > 0 && wellFormed(req) {
		if r, ok := c.cache.get(&h, req.Keyspace, req.RequiredScopes); ok {
			return r, nil
		}
	}
	var epoch uint64
	if c.cache != nil {
		epoch = c.cache.epoch()
	}
	resp, err := c.validate(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if c.cache != nil && resp.GetCacheable() {
		c.cache.put(&h, req.Keyspace, resp.GetKey(), epoch, resp.GetReplica())
	}
	return Result{Valid: resp.GetValid(), Code: resp.GetCode(), Key: resp.GetKey(), Response: resp}, nil
}

// wellFormed reports whether the service would take req's cost and
// address (else it answers INVALID_ARGUMENT, which the cache must not hide).
func wellFormed(req *keyservicev1.ValidateRequest) bool {
	if req.Cost != nil && (req.GetCost() < 0 || req.GetCost() > 1_000_000) {
		return false
	}
	if len(req.RequiredScopes) > 64 {
		return false
	}
	if req.ClientIp != "" {
		if _, err := netip.ParseAddr(req.ClientIp); err != nil {
			return false
		}
	}
	return true
}

// validate calls Validate with the client's deadline, credential and
// retry rule.
func (c *Client) validate(ctx context.Context, req *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	if c.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, c.md)
	}
	spends := req.Cost == nil || req.GetCost() > 0
	for try := 0; ; try++ {
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok && c.o.timeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, c.o.timeout)
		}
		// Without WaitForReady a call fails at once while the connection
		// is not ready; such a call never reached the service, so it is
		// safe to try again even when it spends.
		resp, err := c.rpc.Validate(tctx, req)
		cancel()
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		if code != codes.Unavailable || try >= c.o.retries || ctx.Err() != nil || (spends && !notSent(err)) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				code = status.FromContextError(err).Code()
			}
			return nil, &Error{Code: code, err: err}
		}
		select {
		case <-time.After(time.Duration(50<<try) * time.Millisecond):
		case <-ctx.Done():
			return nil, &Error{Code: status.FromContextError(ctx.Err()).Code(), err: ctx.Err()}
		}
	}
}

// notSent reports whether an UNAVAILABLE error came from the connection
// (never ready, refused) rather than from the service, which may have
// spent before it failed.
func notSent(err error) bool {
	s, _ := status.FromError(err)
	msg := s.Message()
	return strings.HasPrefix(msg, "connection error:") || strings.Contains(msg, "name resolver error") || strings.Contains(msg, "produced zero addresses")
}
