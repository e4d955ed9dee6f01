package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// TestGatewayWrapsEveryMethod calls every method of the service through the
// gateway's wrapper and checks that each one ran the interceptor chain with
// its own method name. A method added to the proto but not to chained fails.
func TestGatewayWrapsEveryMethod(t *testing.T) {
	var seen []string
	counting := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen = append(seen, info.FullMethod)
		return nil, status.Error(codes.Aborted, "stop here")
	}
	c := &chained{srv: &keyService{}, intercept: counting}
	v := reflect.ValueOf(c)
	for _, m := range keyservicev1.KeyService_ServiceDesc.Methods {
		fn := v.MethodByName(m.MethodName)
		if !fn.IsValid() {
			t.Fatalf("no method %s", m.MethodName)
		}
		req := reflect.New(fn.Type().In(1).Elem())
		out := fn.Call([]reflect.Value{reflect.ValueOf(context.Background()), req})
		err, _ := out[1].Interface().(error)
		want := "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/" + m.MethodName
		if status.Code(err) != codes.Aborted || len(seen) == 0 || seen[len(seen)-1] != want {
			t.Fatalf("%s did not run through the chain (err %v, seen %v)", m.MethodName, err, seen)
		}
	}
	if len(seen) != len(keyservicev1.KeyService_ServiceDesc.Methods) {
		t.Fatalf("chain ran %d times for %d methods", len(seen), len(keyservicev1.KeyService_ServiceDesc.Methods))
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mk := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name+">")
			resp, err := h(ctx, req)
			order = append(order, "<"+name)
			return resp, err
		}
	}
	_, _ = chain(mk("a"), mk("b"), mk("c"))(context.Background(), nil, &grpc.UnaryServerInfo{},
		func(context.Context, any) (any, error) { order = append(order, "h"); return nil, nil })
	if got := strings.Join(order, " "); got != "a> b> c> h <c <b <a" {
		t.Fatalf("order %q", got)
	}
}

func TestRecoveryTurnsPanicIntoInternal(t *testing.T) {
	ic := recovery(slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := ic(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"},
		func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
}

func TestToStatus(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sqlErr := errors.New(`ERROR: duplicate key value violates unique constraint "api_keys_key_hash_idx" (SQLSTATE 23505)`)
	tests := []struct {
		name string
		err  error
		want codes.Code
		msg  string
	}{
		{"status passes through", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied, "no"},
		{"bad request", invalid("name", "is required"), codes.InvalidArgument, "name: is required"},
		{"not found", fmt.Errorf("get: %w", store.ErrNotFound), codes.NotFound, "key not found"},
		{"store unavailable", fmt.Errorf("x: %w", store.ErrUnavailable), codes.Unavailable, "key store unavailable, retry later"},
		{"validate unavailable", validate.ErrUnavailable, codes.Unavailable, "key store unavailable, retry later"},
		{"canceled", context.Canceled, codes.Canceled, "call canceled"},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
		{"driver detail is hidden", sqlErr, codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(toStatus(context.Background(), log, tt.err))
			if st.Code() != tt.want || st.Message() != tt.msg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tt.want, tt.msg)
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":            "postgres://env/db",
		"KEYSERVICE_GRPC_ADDR":    ":7000",
		"KEYSERVICE_ADMIN_TOKENS": "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb",
		"KEYSERVICE_MIGRATE":      "true",
		"KEYSERVICE_DB_MAX_CONNS": "8",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := Defaults()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if err := cfg.Parse(fs, []string{"--grpc-addr", ":7001", "--db-statement-timeout", "2s"}, lookup); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != ":7001" {
		t.Errorf("flag must win over env: %q", cfg.GRPCAddr)
	}
	if cfg.DatabaseURL != "postgres://env/db" || !cfg.Migrate || cfg.DBMaxConns != 8 {
		t.Errorf("env not applied: %+v", cfg)
	}
	if len(cfg.AdminTokens) != 2 || cfg.AdminTokens[1] != "bbbbbbbbbbbbbbbb" {
		t.Errorf("tokens %q", cfg.AdminTokens)
	}
	if cfg.DBStatementTimeout != 2*time.Second || cfg.HTTPAddr != ":8080" {
		t.Errorf("flag or default lost: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		env, value, want string
	}{
		{"KEYSERVICE_DB_MAX_CONNS", "many", "KEYSERVICE_DB_MAX_CONNS"},
		{"KEYSERVICE_MIGRATE", "perhaps", "KEYSERVICE_MIGRATE"},
		{"KEYSERVICE_SHUTDOWN_TIMEOUT", "10", "KEYSERVICE_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		cfg := Defaults()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		err := cfg.Parse(fs, nil, func(k string) (string, bool) { return tt.value, k == tt.env })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%s: %v", tt.env, tt.value, err)
		}
	}
	bad := []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.DatabaseURL = "" }, "DATABASE_URL"},
		{func(c *Config) { c.DatabaseURL = "mysql://x" }, "DATABASE_URL"},
		{func(c *Config) { c.GRPCAddr = "9090" }, "KEYSERVICE_GRPC_ADDR"},
		{func(c *Config) { c.HTTPAddr = c.GRPCAddr }, "KEYSERVICE_HTTP_ADDR"},
		{func(c *Config) { c.AdminTokens = []string{"short"} }, "KEYSERVICE_ADMIN_TOKENS"},
		{func(c *Config) { c.KeyPrefix = "Bad_Prefix" }, "KEYSERVICE_KEY_PREFIX"},
		{func(c *Config) { c.DBMaxConns = 1 }, "KEYSERVICE_DB_MAX_CONNS"},
		{func(c *Config) { c.DBAcquireTimeout = 0 }, "KEYSERVICE_DB_ACQUIRE_TIMEOUT"},
		{func(c *Config) { c.LogLevel = "loud" }, "KEYSERVICE_LOG_LEVEL"},
		{func(c *Config) { c.LogFormat = "xml" }, "KEYSERVICE_LOG_FORMAT"},
	}
	for _, b := range bad {
		cfg := Defaults()
		cfg.DatabaseURL = "postgres://x/y"
		b.mut(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want an error naming %s, got %v", b.want, err)
		}
	}
}
