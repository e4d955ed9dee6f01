package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// grpc-go answers INTERNAL when a request does not decode (a truncated
// message, invalid UTF-8 in a string field): the client's bytes would look
// like our fault. The server's codec therefore lets a KeyService request
// that fails to decode through, remembering the failure, and the first
// interceptor refuses it as INVALID_ARGUMENT before anything reads it.
// Other services' messages (health, reflection) decode as before.

// undecodable remembers KeyService requests whose bytes did not decode,
// until the interceptor takes them (every KeyService method is unary and
// runs the chain right after decoding).
type undecodable struct {
	pending atomic.Int64 // entries in m: the interceptor looks only when > 0
	m       sync.Map     // request message -> decode error
}

// lenientCodec is the proto codec, except as above.
type lenientCodec struct {
	encoding.CodecV2
	bad *undecodable
}

var keyServicePackage = keyservicev1.File_keyservice_v1_keyservice_proto.Package()

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if m, ok := v.(proto.Message); ok && m.ProtoReflect().Descriptor().ParentFile().Package() == keyServicePackage {
		c.bad.m.Store(v, err)
		c.bad.pending.Add(1)
		return nil
	}
	return err
}

// interceptor is the first of the chain: the request has arrived (its
// read deadline, see readDeadline, no longer applies), and a request that
// did not decode is INVALID_ARGUMENT.
func (b *undecodable) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if t, ok := ctx.Value(readTimerKey{}).(*time.Timer); ok {
			t.Stop()
		}
		if b.pending.Load() > 0 {
			if err, found := b.m.LoadAndDelete(req); found {
				b.pending.Add(-1)
				return nil, status.Errorf(codes.InvalidArgument, "the request is not a valid %s message: %v", proto.MessageName(req.(proto.Message)), err)
			}
		}
		return handler(ctx, req)
	}
}

// readTimerKey holds the timer of a KeyService call's read deadline.
type readTimerKey struct{}

// readDeadline bounds how long a KeyService call may take to send its
// request after its headers: a client that opens calls and never sends the
// message has them cancelled after limit, so it cannot hold goroutines (or
// stream slots) for ever. The timer is stopped as soon as the request is
// decoded (the first interceptor), so the handler's time is not limited.
// Health and reflection streams are not affected.
func readDeadline(limit time.Duration) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if !strings.HasPrefix(info.FullMethodName, keyServicePrefix) {
			return ctx, nil
		}
		// The stream's context becomes this one: cancelling it ends the
		// wait for the message; the stream's own end cancels it otherwise.
		ctx, cancel := context.WithCancel(ctx)
		t := time.AfterFunc(limit, cancel)
		return context.WithValue(ctx, readTimerKey{}, t), nil
	}
}
