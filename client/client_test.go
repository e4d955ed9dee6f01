package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/client"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const adminToken = "client-test-admin-token-0123456789"

// replica runs a real server on dbURL until the test ends (or stop).
type replica struct {
	srv  *server.Server
	stop func()
}

func startReplica(t testing.TB, dbURL string, tune ...func(*config.Config)) *replica {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = dbURL
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokens = []string{adminToken}
	cfg.ReadyInterval = 100 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	for _, f := range tune {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	r := &replica{srv: srv, stop: func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}}
	t.Cleanup(r.stop)
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready after 30s")
	}
	return r
}

func start(t *testing.T) *replica {
	u, _ := testdb.New(t)
	return startReplica(t, u)
}

// adminOf is an admin connection to r.
func adminOf(t testing.TB, r *replica) (keyservicev1.KeyServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(r.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return keyservicev1.NewKeyServiceClient(conn), metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
}

func create(t *testing.T, adm keyservicev1.KeyServiceClient, ctx context.Context, req *keyservicev1.CreateKeyRequest) *keyservicev1.CreateKeyResponse {
	t.Helper()
	if req.Name == "" {
		req.Name = "k"
	}
	if req.Owner == "" {
		req.Owner = "acme"
	}
	out, err := adm.CreateKey(ctx, req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out
}

func newClient(t *testing.T, r *replica, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(r.srv.GRPCAddr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestVerifyAnswersAndErrors(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r)
	ctx := context.Background()
	good := create(t, adm, actx, &keyservicev1.CreateKeyRequest{Scopes: []string{"read"}})
	gone := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	if _, err := adm.RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: gone.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  string
		opts []client.VerifyOption
		want keyservicev1.Code
	}{
		{"valid", good.GetSecret(), nil, keyservicev1.Code_CODE_VALID},
		{"valid with its scope", good.GetSecret(), []client.VerifyOption{client.WithScopes("read")}, keyservicev1.Code_CODE_VALID},
		{"missing scope", good.GetSecret(), []client.VerifyOption{client.WithScopes("write")}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE},
		{"revoked", gone.GetSecret(), nil, keyservicev1.Code_CODE_REVOKED},
		{"malformed", "not-a-key", nil, keyservicev1.Code_CODE_MALFORMED},
	} {
		res, err := c.Verify(ctx, tc.key, tc.opts...)
		if err != nil || res.Code != tc.want || res.Valid != (tc.want == keyservicev1.Code_CODE_VALID) {
			t.Errorf("%s: Verify = %v %v, %v; want %v", tc.name, res.Valid, res.Code, err, tc.want)
		}
	}
	if res, _ := c.Verify(ctx, good.GetSecret()); res.Key.GetId() != good.GetKey().GetId() || res.Key.GetOwner() != "acme" {
		t.Errorf("the record of a valid key: %v", res.Key)
	}

	// No answer to be had: a typed error naming the gRPC code, never the key.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	dead, err := client.New(closed, client.WithTimeout(2*time.Second), client.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	_, err = dead.Verify(ctx, good.GetSecret())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != codes.Unavailable || status.Code(err) != codes.Unavailable {
		t.Fatalf("Verify at a closed port: %v, want a *client.Error with Unavailable", err)
	}
	if containsKey(err.Error(), good.GetSecret()) {
		t.Fatal("the error shows the key")
	}
}

func containsKey(s, key string) bool {
	for i := 0; i+len(key) <= len(s); i++ {
		if s[i:i+len(key)] == key {
			return true
		}
	}
	return false
}

func TestHTTPMiddlewareAnswersAsForwardAuth(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r)
	good := create(t, adm, actx, &keyservicev1.CreateKeyRequest{Scopes: []string{"read"}})
	gone := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	limited := create(t, adm, actx, &keyservicev1.CreateKeyRequest{RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
	if _, err := adm.RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: gone.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		id, auth string
	}
	got := make(chan seen, 10)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{client.KeyFrom(r.Context()).GetId(), r.Header.Get("Authorization")}
		w.WriteHeader(http.StatusNoContent)
	})
	plain := httptest.NewServer(c.HTTPMiddleware()(app))
	defer plain.Close()
	scoped := httptest.NewServer(c.HTTPMiddleware(client.Require(client.WithScopes("write")))(app))
	defer scoped.Close()
	call := func(base, key string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := call(plain.URL, good.GetSecret()); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("valid key: %d", resp.StatusCode)
	}
	if s := <-got; s.id != good.GetKey().GetId() || s.auth != "" {
		t.Fatalf("the app saw key id %q and Authorization %q: want the key's id and no key", s.id, s.auth)
	}
	const challenge = `Bearer realm="keyservice"`
	for _, tc := range []struct {
		name, base, key string
		status          int
		www             string
	}{
		{"missing", plain.URL, "", 401, challenge},
		{"wrong", plain.URL, "ks_definitelynotakey", 401, challenge + `, error="invalid_token"`},
		{"revoked", plain.URL, gone.GetSecret(), 401, challenge + `, error="invalid_token"`},
		{"scope missing", scoped.URL, good.GetSecret(), 403, challenge + `, error="insufficient_scope"`},
	} {
		resp := call(tc.base, tc.key)
		if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.www {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.www)
		}
	}
	if resp := call(plain.URL, limited.GetSecret()); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("limited key, first call: %d", resp.StatusCode)
	}
	<-got
	resp := call(plain.URL, limited.GetSecret())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "1" ||
		resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("X-Refused-By") != "key" {
		t.Fatalf("limited key, second call: %d %v", resp.StatusCode, resp.Header)
	}
	if len(got) != 0 {
		t.Fatal("a refused request reached the app")
	}
}

func TestUnaryServerInterceptor(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r)
	good := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	var sawKey, sawAuth string
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return c.UnaryServerInterceptor()(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			sawKey, sawAuth = client.KeyFrom(ctx).GetId(), fmtMD(md.Get("authorization"))
			return h(ctx, req)
		})
	}))
	healthpb.RegisterHealthServer(g, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(l)
	defer g.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	with := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	}
	if _, err := hc.Check(with(good.GetSecret()), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("valid key: %v", err)
	}
	if sawKey != good.GetKey().GetId() || sawAuth != "" {
		t.Fatalf("the handler saw key %q and authorization %q", sawKey, sawAuth)
	}
	if _, err := hc.Check(with("ks_wrong"), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong key: %v, want UNAUTHENTICATED", err)
	}
	if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no key: %v, want UNAUTHENTICATED", err)
	}
}

func fmtMD(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
