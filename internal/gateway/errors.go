package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// jsonOptions are the REST answers' JSON options: every scalar, list and
// map field is written, even when false, zero or empty (valid and code
// included), under its proto name; a message field that is not set (a key
// that was not found, a timestamp that never happened) is left out rather
// than written as null, as the OpenAPI file describes it.
var jsonOptions = protojson.MarshalOptions{EmitDefaultValues: true, UseProtoNames: true}

// RESTError is the body of a REST error: the google.rpc.Status REST
// clients have always read (code: the gRPC code number, message, details),
// the code's name in status, and the same again in AIP-193's shape under
// error, whose code is the HTTP status.
func RESTError(s *spb.Status, httpStatus int) *keyservicev1.RestError {
	name := code.Code(s.GetCode()).String() // "NOT_FOUND", as google.rpc.Code spells it
	return &keyservicev1.RestError{
		Code: s.GetCode(), Message: s.GetMessage(), Status: name, Details: s.GetDetails(),
		Error: &keyservicev1.RestErrorStatus{Code: int32(httpStatus), Message: s.GetMessage(), Status: name, Details: s.GetDetails()},
	}
}

// WriteStatus writes an error as every REST error is written (RESTError),
// with the HTTP status httpStatus.
func WriteStatus(w http.ResponseWriter, httpStatus int, c codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	b, _ := jsonOptions.Marshal(RESTError(status.New(c, msg).Proto(), httpStatus))
	_, _ = w.Write(b)
}

// restErrorHandler is grpc-gateway's own error handler (headers, trailers,
// the HTTP status of the code) writing RESTError for the status.
func restErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var httpStatus int
	if custom := (*runtime.HTTPStatusError)(nil); errors.As(err, &custom) {
		httpStatus = custom.HTTPStatus // as the default handler: the status it was given
	} else {
		httpStatus = runtime.HTTPStatusFromCode(status.Convert(err).Code())
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, errorMarshaler{m, httpStatus}, w, r, err)
}

// errorMarshaler marshals the gateway's google.rpc.Status as RESTError.
type errorMarshaler struct {
	runtime.Marshaler
	httpStatus int
}

func (m errorMarshaler) Marshal(v any) ([]byte, error) {
	if s, ok := v.(*spb.Status); ok {
		return m.Marshaler.Marshal(RESTError(s, m.httpStatus))
	}
	return m.Marshaler.Marshal(v)
}
