package middleware

import (
	"bytes"
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpc-go answers INTERNAL when a request does not decode (a truncated
// message, invalid UTF-8 in a string field): the client's bytes would look
// like our fault. The server's codec therefore lets a request that fails to
// decode through, remembering the failure, and the first link that sees
// the message refuses it as INVALID_ARGUMENT before anything reads it: for
// a unary call the chain's RefuseUndecodable, for a streaming call
// StreamRequests. It holds for every service on the port (KeyService,
// Envoy's Authorization, health, reflection).

// undecodableMark is the unknown field (the highest field number, bytes)
// an undecodable request is reduced to: the message itself carries the
// verdict to the interceptor, so nothing is kept anywhere if the call ends
// before the interceptor runs. A client that sends this field itself only
// fails its own call.
var undecodableMark = protowire.AppendBytes(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.BytesType), []byte("keyservice: undecodable request"))

// LenientCodec is the proto codec, except as above.
type LenientCodec struct {
	encoding.CodecV2
}

func (c LenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if m, ok := v.(proto.Message); ok {
		proto.Reset(m)
		m.ProtoReflect().SetUnknown(undecodableMark)
		return nil
	}
	return err
}

// refusal is the answer to a request the codec marked as undecodable, nil
// for any other.
func refusal(req any) error {
	if m, ok := req.(proto.Message); ok {
		if u := m.ProtoReflect().GetUnknown(); len(u) > 0 && bytes.HasSuffix(u, undecodableMark) {
			return status.Errorf(codes.InvalidArgument, "the request is not a valid %s message (truncated, or invalid UTF-8 in a string field)", proto.MessageName(m))
		}
	}
	return nil
}

// RefuseUndecodable answers a request the codec marked as undecodable with
// INVALID_ARGUMENT, and stops its read deadline (the request has arrived).
func RefuseUndecodable() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		requestArrived(ctx)
		if err := refusal(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}
