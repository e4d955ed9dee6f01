// Package gateway holds the HTTP-facing transports of the service, all in
// process and all through the interceptor chain: the REST gateway
// (grpc-gateway), forward-auth for HTTP proxies (/v1/auth: nginx, Traefik,
// Caddy), and Envoy's ext_authz Check; and how each tells who the end
// client is (the forwarded chain, believed only from trusted proxies).
package gateway

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
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/middleware"
)

// REST returns the REST handler for the service (grpc-gateway, in
// process). JSON carries every scalar, list and map field (valid and code
// included, even when false or zero) and leaves out message fields that
// are not set (jsonOptions), uses the proto field names, and rejects
// unknown fields and unknown query parameters. Errors are RESTError. srv must already run through the
// interceptor chain (middleware.Bind).
func REST(ctx context.Context, srv keyservicev1.KeyServiceServer, maxBody int64, trusted []netip.Prefix, streams *middleware.Streams) (http.Handler, error) {
	marshaler := fastJSON{strictJSON{&runtime.JSONPb{
		MarshalOptions:   jsonOptions,
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}}
	// grpc-gateway keeps the query parser in a package variable, which
	// SetQueryParameterParser writes each time a mux is built: set it once,
	// so a second server in the process (tests, the bench) does not write it
	// while the first serves.
	queryParserOnce.Do(func() { runtime.NewServeMux(runtime.SetQueryParameterParser(strictQuery{})) })
	mux := runtime.NewServeMux(
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithErrorHandler(restErrorHandler),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(func(h string) (string, bool) {
			switch textproto.CanonicalMIMEHeaderKey(h) {
			case "X-Request-Id":
				return middleware.RequestIDHeader, true
			case "Traceparent", "Tracestate":
				return strings.ToLower(h), true
			}
			return runtime.DefaultHeaderMatcher(h)
		}),
		runtime.WithOutgoingHeaderMatcher(func(h string) (string, bool) {
			switch h {
			case middleware.RequestIDHeader:
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
	// Registered after: grpc-gateway tries the newest route first.
	if err := mux.HandlePath(http.MethodGet, "/v1/key-events", watchEvents(srv, mux, marshaler, streams)); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		g := caller.HTTPCall{RemoteAddr: r.RemoteAddr}
		g.ClientAddr, g.ChainUnusable = httpClientAddr(r, trusted)
		if r.TLS != nil {
			g.CertName = caller.CertNameOf(r.TLS.VerifiedChains)
		}
		// Answers carry identities (and CreateKey a secret): no cache may keep them.
		w.Header().Set("Cache-Control", "no-store")
		ctx := caller.WithHTTPCall(r.Context(), g)
		if r.URL.RawQuery != "" && !takesQuery(r) {
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

var queryParserOnce sync.Once

// routingError answers a request no route takes: a wrong method is 405
// (grpc-gateway says 501, as if the server lacked the feature), with the
// same JSON Status body as every other error.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	WriteStatus(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method "+r.Method+" not allowed on "+r.URL.Path)
}

// queryRoutes are the GET routes whose requests take query parameters
// (checked field by field by strictQuery); any other route with a query
// string is a 400.
var queryRoutes = map[string]bool{"/v1/keys": true, "/v1/audit-events": true, "/v1/keyspaces": true, "/v1/credentials": true,
	"/v1/owners": true, "/v1/usage": true, "/v1/key-events": true}

// takesQuery reports whether r's route takes query parameters: the GET
// routes above, and PATCH /v1/keys/{id} and /v1/keyspaces/{id} their
// update_mask and request_id (and nothing else: the fields travel in the
// body).
func takesQuery(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet:
		return queryRoutes[r.URL.Path]
	case http.MethodPatch:
		for k := range r.URL.Query() {
			switch k {
			case "update_mask", "updateMask", "request_id", "requestId":
			default:
				return false
			}
		}
		return strings.HasPrefix(r.URL.Path, "/v1/keys/") || strings.HasPrefix(r.URL.Path, "/v1/keyspaces/") || strings.HasPrefix(r.URL.Path, "/v1/owners/")
	}
	return false
}

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
