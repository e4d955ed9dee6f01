package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/middleware"
	spb "google.golang.org/genproto/googleapis/rpc/status"
)

// watchEvents serves GET /v1/key-events: WatchKeyEvents as newline-
// delimited JSON, one {"result": event} a line, flushed as each comes; an
// error after the first line is a last line {"error": …} (as grpc-gateway
// streams). grpc-gateway's in-process transport has no streams, so the
// route is served here, through the same chain (srv is the bound service).
//
// Its streams count with gRPC's against the same bound (streams), and each
// line must be written within lineWriteTimeout: a client that stops
// reading is cut off, never held open.
func watchEvents(srv keyservicev1.KeyServiceServer, mux *runtime.ServeMux, m runtime.Marshaler, streams *middleware.Streams) runtime.HandlerFunc {
	const method = keyservicev1.KeyService_WatchKeyEvents_FullMethodName
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		ctx := r.Context()
		var sts runtime.ServerTransportStream
		ctx = grpc.NewContextWithServerTransportStream(ctx, &sts)
		ctx, err := runtime.AnnotateIncomingContext(ctx, mux, r, method, runtime.WithHTTPPathPattern("/v1/key-events"))
		req := new(keyservicev1.WatchKeyEventsRequest)
		if err == nil {
			if perr := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray(nil)); perr != nil {
				err = status.Error(codes.InvalidArgument, perr.Error())
			}
		}
		s := &ndjsonStream{ctx: ctx, w: w, m: m}
		if err == nil && streams != nil {
			g, _ := caller.HTTPCallOf(ctx)
			release, ok := streams.Take(g.ClientAddr)
			if !ok {
				err = middleware.ErrTooManyStreams
			} else {
				defer release()
			}
		}
		if err == nil {
			// A stream outlives the server's read timeout; each line has
			// its own write deadline (line).
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
			err = srv.WatchKeyEvents(req, s)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		if !s.started {
			md := runtime.ServerMetadata{HeaderMD: sts.Header(), TrailerMD: sts.Trailer()}
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, m, w, r, err)
			return
		}
		st := status.Convert(err)
		s.line("error", RESTError(&spb.Status{Code: int32(st.Code()), Message: st.Message()}, runtime.HTTPStatusFromCode(st.Code())))
	}
}

// ndjsonStream is WatchKeyEvents' server stream over HTTP.
type ndjsonStream struct {
	grpc.ServerStream // nil: only the methods below are called
	ctx               context.Context
	w                 http.ResponseWriter
	m                 runtime.Marshaler
	started           bool
}

func (s *ndjsonStream) Context() context.Context { return s.ctx }

func (s *ndjsonStream) SetHeader(metadata.MD) error  { return nil }
func (s *ndjsonStream) SendHeader(metadata.MD) error { return nil }
func (s *ndjsonStream) SetTrailer(metadata.MD)       {}

func (s *ndjsonStream) Send(e *keyservicev1.WatchKeyEventsResponse) error {
	return s.line("result", e)
}

// line writes {"<name>": v} and a newline, and flushes it.
func (s *ndjsonStream) line(name string, v any) error {
	b, err := s.m.Marshal(v)
	if err != nil {
		return err
	}
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
	}
	buf := make([]byte, 0, len(b)+len(name)+6)
	buf = append(append(append(append(buf, `{"`...), name...), `":`...), b...)
	buf = append(buf, "}\n"...)
	rc := http.NewResponseController(s.w)
	_ = rc.SetWriteDeadline(time.Now().Add(lineWriteTimeout))
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	// No deadline between lines: HTTP/2 would reset an idle stream.
	return rc.SetWriteDeadline(time.Time{})
}

// lineWriteTimeout bounds the write of one line of an event stream.
const lineWriteTimeout = 10 * time.Second
