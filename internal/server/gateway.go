package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
// srv must already run through the interceptor chain (a *chained).
func newGateway(ctx context.Context, srv *chained, maxBody int64, trusted []netip.Prefix) (http.Handler, error) {
	marshaler := strictJSON{&runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
	mux := runtime.NewServeMux(
		runtime.SetQueryParameterParser(strictQuery{}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(func(h string) (string, bool) {
			switch textproto.CanonicalMIMEHeaderKey(h) {
			case "X-Request-Id":
				return requestIDHeader, true
			case "Traceparent", "Tracestate":
				return strings.ToLower(h), true
			}
			return runtime.DefaultHeaderMatcher(h)
		}),
		runtime.WithOutgoingHeaderMatcher(func(h string) (string, bool) {
			switch h {
			case requestIDHeader:
				return "X-Request-Id", true
			case "retry-after":
				return "Retry-After", true
			case "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset":
				return textproto.CanonicalMIMEHeaderKey(h), true
			}
			return "", false
		}),
	)
	if err := keyservicev1.RegisterKeyServiceHandlerServer(ctx, mux, srv); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		g := gatewayCall{remoteAddr: r.RemoteAddr}
		g.clientAddr, g.chainUnusable = httpClientAddr(r, trusted)
		if r.TLS != nil {
			g.certName = nameOf(r.TLS.VerifiedChains)
		}
		// Answers carry identities (and CreateKey a secret): no cache may keep them.
		w.Header().Set("Cache-Control", "no-store")
		ctx := withGateway(r.Context(), g)
		if r.URL.RawQuery != "" && !(r.Method == http.MethodGet && queryRoutes[r.URL.Path]) {
			// Routes whose request is all path and body: grpc-gateway would
			// ignore the query; refuse it like an unknown JSON field.
			runtime.HTTPError(ctx, mux, marshaler, w, r, status.Error(codes.InvalidArgument, "this route takes no query parameters"))
			return
		}
		mux.ServeHTTP(w, r.WithContext(ctx))
	}), nil
}

// strictJSON is runtime.JSONPb whose request decoder accepts exactly one
// JSON value: any bytes after it but white space (`{"name":"a"}garbage`, a
// second object) make the request a 400 instead of being ignored.
type strictJSON struct{ *runtime.JSONPb }

func (m strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		dec := json.NewDecoder(r)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			if errors.Is(err, io.EOF) {
				return err // an empty body: the gateway's own "no body" case
			}
			return fmt.Errorf("request body is not valid JSON: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errors.New("request body is not valid JSON: unexpected data after the JSON value")
		}
		return m.Unmarshal(value, v)
	})
}

// queryRoutes are the GET routes whose requests take query parameters
// (checked field by field by strictQuery); any other route with a query
// string is a 400.
var queryRoutes = map[string]bool{"/v1/keys": true}

// strictQuery refuses query parameters that name no field of the request
// (grpc-gateway ignores them), like unknown JSON fields in a body: a typo
// such as ?pagesize=10 must not silently list with the default.
type strictQuery struct{ runtime.DefaultQueryParser }

func (q strictQuery) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	for key := range values {
		md := msg.ProtoReflect().Descriptor()
		parts := strings.Split(key, ".")
		for i, part := range parts {
			fd := md.Fields().ByName(protoreflect.Name(part))
			if fd == nil {
				fd = md.Fields().ByJSONName(part)
			}
			if fd == nil {
				return fmt.Errorf("unknown query parameter %q", key)
			}
			if i < len(parts)-1 {
				if fd.Message() == nil {
					return fmt.Errorf("unknown query parameter %q", key)
				}
				md = fd.Message()
			}
		}
	}
	return q.DefaultQueryParser.Parse(msg, values, filter)
}

// httpClientAddr is the address of the HTTP client: the connection's peer,
// or, when that peer is a trusted proxy, the nearest address of the
// forwarded chain (X-Forwarded-For, else RFC 7239 Forwarded) that is not
// itself a trusted proxy. unusable reports a trusted peer whose chain is
// missing or does not parse: the peer's own address is returned, and it
// must then count as an anonymous end client (never as a proxy that may
// name end clients: a bad header must not make a body field believed).
func httpClientAddr(r *http.Request, trusted []netip.Prefix) (addr netip.Addr, unusable bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr = ap.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr, false
	}
	if end, ok := forwardedClientOf(r.Header, trusted); ok {
		return end, false
	}
	return addr, true
}

// forwardedClientOf walks the forwarded chain from the nearest hop (the
// right): X-Forwarded-For, or without it RFC 7239 Forwarded "for=". It
// returns the first hop that is not a trusted proxy; only the hops up to
// it must parse (what a client put further left cannot spoil the chain).
// ok is false when there is no chain, a hop up to the client does not
// parse ("unknown", an obfuscated identifier, garbage), or every hop is a
// trusted proxy. A hop may be addr, addr:port, [IPv6] or [IPv6]:port.
func forwardedClientOf(h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	var raw []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			raw = append(raw, strings.Split(v, ",")...)
		}
	} else {
		for _, v := range h.Values("Forwarded") {
			for _, elem := range strings.Split(v, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, val, found := strings.Cut(strings.TrimSpace(pair), "=")
					if found && strings.EqualFold(k, "for") {
						raw = append(raw, strings.Trim(val, `"`))
					}
				}
			}
		}
	}
	for i := len(raw) - 1; i >= 0; i-- {
		hop, ok := parseHop(strings.TrimSpace(raw[i]))
		if !ok {
			return netip.Addr{}, false
		}
		if !isTrusted(hop, trusted) {
			return hop, true
		}
	}
	return netip.Addr{}, false
}

// hasForwardedChain reports whether the request carries a forwarded chain
// at all (any X-Forwarded-For or Forwarded line, even an empty one).
func hasForwardedChain(h http.Header) bool {
	return len(h.Values("X-Forwarded-For")) > 0 || len(h.Values("Forwarded")) > 0
}

// parseHop reads an address, address:port, [IPv6] or [IPv6]:port.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
