package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/cli"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) {
	// The commands `keyservice dev` prints name the running binary: in
	// these tests, this one, which then acts as keyservice.
	if os.Getenv("KEYSERVICE_TEST_BINARY_IS_KEYSERVICE") == "1" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	testdb.Main(m)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMigrateCommand(t *testing.T) {
	u := testdb.NewDatabase(t)
	for i := 0; i < 2; i++ { // the second run finds nothing to do
		var out, errOut bytes.Buffer
		if code := cli.Main(context.Background(), []string{"migrate", "--database-url", u}, &out, &errOut); code != 0 {
			t.Fatalf("migrate run %d exited %d: %s", i+1, code, errOut.String())
		}
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM api_keys").Scan(&n); err != nil {
		t.Fatalf("api_keys missing after migrate: %v", err)
	}
}

func TestBadConfigurationStopsStartWithItsName(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://127.0.0.1:1/x")
	t.Setenv("KEYSERVICE_KEY_PREFIX", "Not_OK")
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), []string{"serve"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "KEYSERVICE_KEY_PREFIX") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	t.Setenv("KEYSERVICE_KEY_PREFIX", "ks")
	t.Setenv("KEYSERVICE_DB_ACQUIRE_TIMEOUT", "soon")
	code = cli.Main(context.Background(), []string{"serve"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "KEYSERVICE_DB_ACQUIRE_TIMEOUT") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := cli.Main(context.Background(), []string{"serve", "--no-such-flag"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if code := cli.Main(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestServeHelpListsEverySettingWithDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), []string{"serve", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"DATABASE_URL", "KEYSERVICE_GRPC_ADDR", "KEYSERVICE_HTTP_ADDR",
		"KEYSERVICE_ADMIN_TOKENS", "KEYSERVICE_KEY_PREFIX", "KEYSERVICE_MIGRATE", `(default ":9090")`, `(default "ks")`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// startServer serves a fresh database; opts change its configuration.
func startServer(t *testing.T, opts ...func(*config.Config)) (addr string) {
	t.Helper()
	u, _ := testdb.New(t)
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.GRPCAddr, cfg.HTTPAddr = u, "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokens = []string{"cli-admin-token-0123456789"}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Ready: the keys are loaded, so Validate answers (before, UNAVAILABLE).
	select {
	case <-s.Ready():
	case <-done:
		t.Fatal("the server stopped before it was ready")
	}
	return s.GRPCAddr().String()
}

func TestKeysCommands(t *testing.T) {
	addr := startServer(t)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(context.Background(), append([]string{"keys"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "")
	if code, _, e := run("list", "--addr", addr); code != 1 || !strings.Contains(e, "KEYSERVICE_ADMIN_TOKEN") {
		t.Fatalf("no token: exit %d, %q", code, e)
	}
	// A missing id is a usage mistake, not a missing token.
	if code, _, e := run("get", "--addr", addr); code != 2 || strings.Contains(e, "KEYSERVICE_ADMIN_TOKEN") {
		t.Fatalf("get without an id and without a token: exit %d, %q", code, e)
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	t.Setenv("KEYSERVICE_ADDR", addr)

	code, out, e := run("create", "--name", "ci", "--owner", "acme", "--scope", "read", "--meta", "team=core", "--expires", "720h", "--rate-limit", "100/1m", "--json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, e)
	}
	var created struct {
		Secret string `json:"secret"`
		Key    struct {
			ID        string            `json:"id"`
			Metadata  map[string]string `json:"metadata"`
			RateLimit struct {
				Limit string `json:"limit"`
			} `json:"rate_limit"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key.ID == "" || created.Key.Metadata["team"] != "core" || created.Key.RateLimit.Limit != "100" {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	if code, out, e = run("get", created.Key.ID); code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, created.Key.ID) || !strings.Contains(out, "acme") {
		t.Fatalf("get: exit %d\n%s%s", code, out, e)
	}
	if code, out, _ = run("list", "--owner", "acme", "--json"); code != 0 || !strings.Contains(out, created.Key.ID) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out, _ = run("revoke", created.Key.ID); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	if code, out, _ = run("get", created.Key.ID, "--json"); code != 0 || !strings.Contains(out, `"revoked_at": "20`) {
		t.Fatalf("get after revoke: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "not-a-uuid"}, 1, "InvalidArgument"},
		{[]string{"get", "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"}, 1, "NotFound"},
		// Usage mistakes exit 2, as docs/clients.md says, and say what is wrong.
		{[]string{"create", "--name", "x"}, 2, "--owner"},
		{[]string{"create", "--name", "x", "--owner", "o", "--expires", "yesterday"}, 2, "--expires"},
		{[]string{"create", "--name", "x", "--owner", "o", "--expires", "tomorrow"}, 2, "--expires"},
		{[]string{"get"}, 2, "one key id"},
		{[]string{"revoke", "a", "b"}, 2, "one key id"},
		{[]string{"frob"}, 2, "unknown command"},
		{[]string{"list", "--addr", "127.0.0.1:1", "--timeout", "500ms"}, 1, "Unavailable"},
		{[]string{"list", "--addr", "keys.example.internal:9090"}, 1, "unencrypted"},
	} {
		code, _, e := run(tc.args...)
		if code != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("keys %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, e, tc.code, tc.want)
		}
	}
	// An unknown credential is UNAUTHENTICATED since stored credentials
	// (internal/middleware/auth.go); PERMISSION_DENIED is a known one
	// lacking the permission.
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "wrong-admin-token-0123456789")
	if code, _, e := run("list"); code != 1 || !strings.Contains(e, "Unauthenticated") {
		t.Fatalf("wrong token: exit %d %q", code, e)
	}
}

// TestKeysLifecycleCommands: update (the flags given are the mask),
// disable, enable, rotate and audit list, in tables and JSON; usage
// mistakes exit 2.
func TestKeysLifecycleCommands(t *testing.T) {
	addr := startServer(t)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	t.Setenv("KEYSERVICE_ADDR", addr)
	code, out, e := run("keys", "create", "--name", "life", "--owner", "acme", "--scope", "read", "--meta", "team=core", "--allow-cidr", "10.0.0.0/8", "--json")
	var created struct {
		Key struct {
			ID           string   `json:"id"`
			AllowedCIDRs []string `json:"allowed_cidrs"`
		} `json:"key"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || len(created.Key.AllowedCIDRs) != 1 {
		t.Fatalf("create: exit %d\n%s%s", code, out, e)
	}
	id := created.Key.ID
	code, out, e = run("keys", "update", id, "--scope", "read", "--scope", "write", "--any-address", "--json")
	var updated struct {
		Key struct {
			Scopes       []string          `json:"scopes"`
			Metadata     map[string]string `json:"metadata"`
			AllowedCIDRs []string          `json:"allowed_cidrs"`
			Name         string            `json:"name"`
		} `json:"key"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &updated) != nil || strings.Join(updated.Key.Scopes, ",") != "read,write" ||
		len(updated.Key.AllowedCIDRs) != 0 || updated.Key.Metadata["team"] != "core" || updated.Key.Name != "life" {
		t.Fatalf("update: exit %d\n%s%s", code, out, e)
	}
	if code, out, e = run("keys", "disable", id); code != 0 || !strings.Contains(out, "ENABLED") || !strings.Contains(out, " no ") {
		t.Fatalf("disable: exit %d\n%s%s", code, out, e)
	}
	if code, out, e = run("keys", "enable", id); code != 0 || !strings.Contains(out, " yes ") {
		t.Fatalf("enable: exit %d\n%s%s", code, out, e)
	}
	code, out, e = run("keys", "rotate", id, "--grace", "24h")
	if code != 0 || !strings.Contains(out, "secret: ") || strings.Count(out, "life") != 2 {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, e)
	}
	code, out, e = run("audit", "list", "--key", id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 6 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "rotate") ||
		!strings.Contains(lines[1], "admin-1") || !strings.Contains(lines[4], "scopes,allowed_cidrs") {
		t.Fatalf("audit list: exit %d\n%s%s", code, out, e)
	}
	if code, out, _ = run("audit", "list", "--actor", "admin-1", "--json", "--all"); code != 0 || strings.Count(out, `"action"`) != 6 {
		t.Fatalf("audit list --json --all: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "update", id}, 2, "nothing to change"},
		{[]string{"keys", "update", id, "--scope", "a", "--no-scopes"}, 2, "contradict"},
		{[]string{"keys", "update", id, "--burst", "3"}, 2, "--burst needs --rate-limit"},
		{[]string{"keys", "update", id, "--no-expiry=false"}, 2, "nothing to change"},
		{[]string{"keys", "update", id, "--expires", ""}, 2, "--expires is empty"},
		{[]string{"keys", "update"}, 2, "one key id"},
		{[]string{"keys", "rotate", id, "--grace", "soon"}, 2, "grace"},
		{[]string{"keys", "rotate", id}, 1, "FailedPrecondition"},
		{[]string{"keys", "update", id, "--allow-cidr", "10.1.2.3/8"}, 1, "did you mean 10.0.0.0/8"},
		{[]string{"audit", "frob"}, 2, "unknown command"},
		{[]string{"audit", "list", "--key", "nope"}, 1, "InvalidArgument"},
	} {
		code, _, e := run(tc.args...)
		if code != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, e, tc.code, tc.want)
		}
	}
}
