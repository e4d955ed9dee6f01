package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestRESTErrorsAreJSONWithTheRightStatus: malformed JSON says it is the
// JSON, a wrong method is 405, an unknown path is a JSON 404, and an empty
// key is a 400 naming the field; every error body is a google.rpc.Status.
func TestRESTErrorsAreJSONWithTheRightStatus(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", "/v1/keys:validate", `{"key":`, 400, "not valid JSON"},
		{"GET", "/v1/keys:validate", "", 405, "not allowed"},
		{"DELETE", "/v1/keys", "", 405, "not allowed"},
		{"GET", "/nope", "", 404, "no such path"},
		{"GET", "/v1/nope", "", 404, "Not Found"},
		{"POST", "/v1/keys:validate", `{"key":""}`, 400, "key: is required"},
	} {
		code, body, hdr := e.rest(t, tc.method, tc.path, "", tc.body)
		if code != tc.status || !strings.Contains(body["message"].(string), tc.message) {
			t.Errorf("%s %s: %d %v, want %d mentioning %q", tc.method, tc.path, code, body, tc.status, tc.message)
		}
		if _, ok := body["code"].(float64); !ok || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: not a JSON Status: %v (%s)", tc.method, tc.path, body, hdr.Get("Content-Type"))
		}
	}
}

// TestFirstStartWithMigrateLogsNoFailedLoad: on an empty database served
// with --migrate, the key filter waits for the migrations, so the first
// start logs no failed load of a table that does not exist yet.
func TestFirstStartWithMigrateLogsNoFailedLoad(t *testing.T) {
	t.Parallel()
	e := startOn(t, newEmptyDatabase(t), withConfig(func(c *config.Config) { c.Migrate = true }))
	e.waitReady(t)
	if logs := e.logs.String(); strings.Contains(logs, "loading the key filter failed") || strings.Contains(logs, "does not exist") {
		t.Fatalf("the first start logged a failed load:\n%s", logs)
	}
}

// TestShutdownDelayKeepsServingWhileNotReady: after SIGTERM, with
// KEYSERVICE_SHUTDOWN_DELAY, the replica reports not ready at once but
// still answers calls until the delay is over, so a load balancer can
// take it out before its listeners close.
func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.ShutdownDelay = 3 * time.Second }))
	// Health's Watch stream tells of each change: SERVING now, then
	// NOT_SERVING once SIGTERM is handled.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch, err := healthpb.NewHealthClient(e.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before SIGTERM: %v, %v", r.GetStatus(), err)
	}
	e.cancel() // SIGTERM
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after SIGTERM: %v, %v; want NOT_SERVING", r.GetStatus(), err)
	}
	r, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "garbage"})
	if err != nil || r.GetCode() != keyservicev1.Code_CODE_MALFORMED {
		t.Fatalf("a call during the shutdown delay: %v, %v", r.GetCode(), err)
	}
	if code, _, _ := e.rest(t, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during the shutdown delay: %d, want 503", code)
	}
}

// TestShutdownHoldsPastTheGRPCPortsClose: behind a balancer (a shutdown
// delay set) the process stays up 1.2 s past its gRPC port's close, so a
// connection attempt it turned away just before (its SYN sent again a
// second later) meets a closed port and is refused, rather than an
// address gone with the container. Serve returns no earlier than that.
func TestShutdownHoldsPastTheGRPCPortsClose(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.ShutdownDelay = 50 * time.Millisecond }))
	addr := e.srv.GRPCAddr().String()
	e.cancel() // SIGTERM
	var closed time.Time
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			closed = time.Now()
			break
		}
		// A dropped SYN (the port is turning new connections away): a
		// time-out; try again.
	}
	if closed.IsZero() {
		t.Fatal("the gRPC port was never seen refusing")
	}
	select {
	case err := <-e.done:
		held := time.Since(closed)
		e.done <- err // for the harness's own stop
		if held < time.Second {
			t.Fatalf("Serve returned %s after the gRPC port closed, want the 1.2 s hold", held)
		}
		t.Logf("Serve returned %s after the gRPC port was seen refusing", held.Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
}
