package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/types/known/emptypb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestOversizedHeadersAreRefused: a call whose headers exceed
// KEYSERVICE_MAX_HEADER_BYTES is refused (gRPC metadata, HTTP headers: 8
// clients sending 15 MB headers used to take RSS from 156 MB to 800 MB),
// and a normal caller is served next to it.
func TestOversizedHeadersAreRefused(t *testing.T) {
	e := start(t)
	big := strings.Repeat("x", 64<<10) // 4x the 16 KiB default
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-filler", big)
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "garbage"}); err == nil {
		t.Fatal("gRPC call with 64 KiB of metadata: answered, want refused")
	}
	r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"garbage"}`))
	r.Header.Set("X-Filler", big)
	resp, err := http.DefaultClient.Do(r)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("REST call with 64 KiB of headers: %d, want 431", resp.StatusCode)
		}
	}
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if v, err := keyservicev1.NewKeyServiceClient(conn).Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a normal caller next to it: %v %v", v, err)
	}
}

// TestStalledStreamsAreBoundedPerConnection: a client that opens calls and
// never sends their request gets at most KEYSERVICE_MAX_STREAMS of them on
// its connection (5,000 such streams used to hold 5,044 goroutines); the
// next one waits, and other callers are served meanwhile.
func TestStalledStreamsAreBoundedPerConnection(t *testing.T) {
	const limit = 20
	e := start(t, withConfig(func(c *config.Config) { c.MaxStreams = limit }))
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	for i := 0; i < limit; i++ {
		s, err := conn.NewStream(ctx, desc, keyservicev1.KeyService_Validate_FullMethodName)
		if err != nil {
			t.Fatalf("stalled stream %d: %v", i, err)
		}
		_ = s // headers sent, no message ever
	}
	over, cancelOver := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelOver()
	if s, err := conn.NewStream(over, desc, keyservicev1.KeyService_Validate_FullMethodName); err == nil {
		// The client may return before the stream is admitted; sending
		// must then wait for quota until the deadline.
		if err := s.SendMsg(&keyservicev1.ValidateRequest{Key: "garbage"}); err == nil && s.CloseSend() == nil {
			var out keyservicev1.ValidateResponse
			if err := s.RecvMsg(&out); err == nil {
				t.Fatalf("stream %d on a connection at its limit of %d was served", limit+1, limit)
			}
		}
	}
	if v, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("another caller meanwhile: %v %v", v, err)
	}
}

// TestStalledCallsAreCancelled: a call whose request never follows its
// headers is cancelled after KEYSERVICE_REQUEST_READ_TIMEOUT, on every
// service of the gRPC port (Envoy's Check and health too: 512 stalled
// Check streams were still open after 6 min 40 s), so a client cannot hold
// goroutines by opening calls on ever more connections; a call that sends
// its request at once is served as usual, and a streaming call whose
// request has arrived (a health Watch, reflection) is not cut off.
func TestStalledCallsAreCancelled(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	e := start(t, withConfig(func(c *config.Config) { c.RequestReadTimeout = limit }))
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{
		keyservicev1.KeyService_Validate_FullMethodName,
		authv3.Authorization_Check_FullMethodName,
		healthpb.Health_Check_FullMethodName,
		healthpb.Health_Watch_FullMethodName,
		reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName,
	} {
		t.Run(method, func(t *testing.T) {
			s, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var out emptypb.Empty // never filled: the call must end first
			done := make(chan error, 1)
			go func() { done <- s.RecvMsg(&out) }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a call that never sent its request was answered")
				}
				t.Logf("stalled call ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(5 * time.Second):
				t.Fatalf("a call that never sent its request is still open after 5 s (limit %s)", limit)
			}
		})
	}
	// Normal calls, slower handlers included, are not affected.
	if v, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a normal call: %v %v", v, err)
	}
	// A Watch whose request arrived streams on past the limit: nothing
	// ends it before the client does (waited for: 5 x the limit).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v %v", r, err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := w.Recv()
		ended <- err
	}()
	select {
	case err := <-ended:
		t.Fatalf("a Watch whose request had arrived ended on its own: %v", err)
	case <-time.After(5 * limit):
	}
}
