package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

func TestHealthReadinessAndOpenAPI(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.waitReady(t)
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		code, body, _ := e.rest(t, "GET", p, "", "")
		if code != 200 {
			t.Fatalf("%s: %d %v", p, code, body)
		}
		if p == "/openapi.json" && body["swagger"] != "2.0" {
			t.Fatalf("openapi.json is not an OpenAPI v2 document: %v", body["swagger"])
		}
		// /readyz says how keys are answered: every record in memory here.
		if p == "/readyz" && (body["mode"] != "memory" || !strings.Contains(fmt.Sprint(body["keys"]), "every active key's record in memory")) {
			t.Fatalf("/readyz mode: %v", body)
		}
	}
	// And in filter mode, when the keys do not fit (or the budget is 0).
	f := start(t, withConfig(func(c *config.Config) { c.MemoryBudgetMiB = 0 }))
	if code, body, _ := f.rest(t, "GET", "/readyz", "", ""); code != 200 || body["mode"] != "filter" || !strings.Contains(fmt.Sprint(body["keys"]), "memory mode off") {
		t.Fatalf("/readyz with KEYSERVICE_MEMORY_BUDGET_MIB=0: %d %v", code, body)
	}
	h := healthpb.NewHealthClient(e.conn)
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "keyservice.v1.KeyService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
}

func TestNotReadyUntilMigrated(t *testing.T) {
	t.Parallel()
	u := newEmptyDatabase(t)
	e := startOn(t, u)
	// The first readiness checks find the database up and the schema not
	// migrated, and say so.
	waitFor(t, func() bool {
		code, body, _ := e.rest(t, "GET", "/readyz", "", "")
		return code == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(body["reason"]), "migrat")
	})
	// The gRPC port refuses connections until the replica is first ready
	// (a balancer goes elsewhere): a health probe fails.
	h := healthpb.NewHealthClient(e.conn)
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("health before ready: %v, %v; want Unavailable", resp, err)
	}
	// Until the key filter loads, keys are refused, not sent to the database.
	k, _ := keyFormatKey(t)
	if _, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: k}); status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC Validate before the filter loads: %v, want Unavailable", err)
	}
	if code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, k)); code != http.StatusServiceUnavailable {
		t.Fatalf("REST Validate before the filter loads: %d %v, want 503", code, body)
	}
	// And it stays unready: checks since the first still say so.
	if code, body, _ := e.rest(t, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["reason"]), "migrat") {
		t.Fatalf("readyz later on the unmigrated database: %d %v", code, body)
	}

	// The same database, served with --migrate, becomes ready.
	e.stop(t)
	e2 := startOn(t, u, withConfig(func(c *config.Config) { c.Migrate = true }))
	e2.waitReady(t)
}

func TestRequestIDIsEchoed(t *testing.T) {
	t.Parallel()
	e := start(t)
	req, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"x"}`))
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("REST X-Request-Id = %q", got)
	}
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "def-456")
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "x"}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "def-456" {
		t.Fatalf("gRPC x-request-id = %v", got)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"def-456"`) {
		t.Fatal("request id not logged")
	}
}

// TestShutdownDrainsInFlightCalls holds a RevokeKey on a row lock, stops the
// server, and checks that the call still completes before Serve returns.
func TestShutdownDrainsInFlightCalls(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE", created.GetKey().GetId()); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := e.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: created.GetKey().GetId()})
		result <- err
	}()
	// Wait until the revoke is blocked on the lock.
	waitFor(t, func() bool {
		var n int
		_ = e.queryRow(t, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()", &n)
		return n == 1
	})
	e.cancel() // SIGTERM
	// The drain has begun once the gRPC listener refuses new connections.
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", e.srv.GRPCAddr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-result:
		t.Fatalf("in-flight call ended before it could finish: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatalf("in-flight call failed during drain: %v", err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
		e.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
}

func TestMetricsCountAnswersByPath(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := keyFormatKey(t)
	if _, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: unknown}); err != nil {
		t.Fatal(err)
	}
	families := e.metrics(t)
	for series, want := range map[string]float64{
		`keyservice_validate_answers_total{code="MALFORMED",path="shape"}`:  1,
		`keyservice_validate_answers_total{code="NOT_FOUND",path="filter"}`: 1,
		`keyservice_filter_loaded`:                            1,
		`keyservice_db_pool_max_conns`:                        16,
		`keyservice_cache_positive_hits_total`:                -1, // present
		`keyservice_lookup_refusals_total{reason="deadline"}`: 0,
		`keyservice_lookup_statements_in_flight`:              0,
		`keyservice_cache_warmed_keys_total`:                  0,
		// Every call is counted and timed, first in the chain.
		`keyservice_rpc_requests_total{code="OK",method="/keyservice.v1.KeyService/Validate"}`:   2,
		`keyservice_rpc_duration_seconds{code="OK",method="/keyservice.v1.KeyService/Validate"}`: 2,
	} {
		got, ok := sample(families, series)
		if !ok || (want >= 0 && got != want) {
			t.Errorf("/metrics: %s = %v (exported: %v), want %v", series, got, ok, want)
		}
	}
}

func TestRevokeOnOneReplicaIsRefusedOnAnother(t *testing.T) {
	t.Parallel()
	a := start(t)
	b := startOn(t, a.dbURL)
	b.waitReady(t)
	ctx := context.Background()
	created, err := a.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	req := &keyservicev1.ValidateRequest{Key: created.GetSecret()}
	waitFor(t, func() bool { v, err := b.grpc.Validate(ctx, req); return err == nil && v.GetValid() })
	if _, err := a.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: created.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	if v, err := a.grpc.Validate(ctx, req); err != nil || v.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("same replica right after revoke: %v, %v", v, err)
	}
	waitFor(t, func() bool {
		v, err := b.grpc.Validate(ctx, req)
		return err == nil && v.GetCode() == keyservicev1.Code_CODE_REVOKED
	})
}
