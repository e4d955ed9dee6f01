package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

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
// headers is cancelled after KEYSERVICE_REQUEST_READ_TIMEOUT, so a client
// cannot hold goroutines by opening calls on ever more connections; a
// call that sends its request at once is served as usual.
func TestStalledCallsAreCancelled(t *testing.T) {
	e := start(t, withConfig(func(c *config.Config) { c.RequestReadTimeout = 300 * time.Millisecond }))
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, keyservicev1.KeyService_Validate_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var out keyservicev1.ValidateResponse
	done := make(chan error, 1)
	go func() { done <- s.RecvMsg(&out) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a call that never sent its request was answered")
		}
		t.Logf("stalled call ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("a call that never sent its request is still open after 5 s (limit 300 ms)")
	}
	// Normal calls, slower handlers included, are not affected.
	if v, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a normal call: %v %v", v, err)
	}
}
