package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/cli"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/pgfault"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestKeysWritesRetryWithTheirRequestID: every admin write the CLI sends
// carries a request_id of its own; a write whose COMMIT answer is lost
// (UNAVAILABLE) is sent again with the same id, applied once, and the CLI
// prints the first write's answer: the secret of the one key created, the
// new secret of the one rotation.
func TestKeysWritesRetryWithTheirRequestID(t *testing.T) {
	direct, _ := testdb.New(t)
	pu, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := pgfault.Start(pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	pu.Host = proxy.Addr()
	cfg := config.Defaults()
	cfg.DatabaseURL, cfg.GRPCAddr, cfg.HTTPAddr = pu.String(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokens = []string{"cli-admin-token-0123456789"}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// The gRPC port listens once the server is ready.
	select {
	case <-s.Ready():
	case <-done:
		t.Fatal("the server stopped before it was ready")
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	t.Setenv("KEYSERVICE_ADDR", s.GRPCAddr().String())
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(context.Background(), append([]string{"keys"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	db, err := pgx.Connect(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(context.Background(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	lose := func() func() {
		cut := proxy.CutNextCommit("INSERT INTO audit_events")
		return func() {
			t.Helper()
			select {
			case <-cut:
			case <-time.After(10 * time.Second):
				t.Fatal("no COMMIT was cut")
			}
		}
	}
	type answer struct {
		Secret string `json:"secret"`
		Key    struct {
			ID   string `json:"id"`
			Hint string `json:"hint"`
		} `json:"key"`
	}

	cut := lose()
	code, out, e := run("create", "--name", "retried", "--owner", "acme", "--json")
	cut()
	var created answer
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil {
		t.Fatalf("create with its COMMIT answer lost: exit %d\n%s%s", code, out, e)
	}
	if n := count("SELECT count(*) FROM api_keys WHERE name = 'retried'"); n != 1 {
		t.Fatalf("%d keys; want 1 (the retry must not create another)", n)
	}
	if n := count("SELECT count(*) FROM api_keys WHERE id = '" + created.Key.ID + "'"); n != 1 || !strings.HasSuffix(created.Secret, created.Key.Hint[len(created.Key.Hint)-4:]) {
		t.Fatalf("the printed answer is not the created key's: %s", out)
	}

	cut = lose()
	code, out, e = run("rotate", created.Key.ID, "--grace", "0s", "--json")
	cut()
	var rotated answer
	if code != 0 || json.Unmarshal([]byte(out), &rotated) != nil || rotated.Secret == "" {
		t.Fatalf("rotate with its COMMIT answer lost: exit %d\n%s%s", code, out, e)
	}
	if n := count("SELECT count(*) FROM api_keys WHERE rotated_from = '" + created.Key.ID + "' AND id = '" + rotated.Key.ID + "'"); n != 1 || !strings.HasSuffix(rotated.Secret, rotated.Key.Hint[len(rotated.Key.Hint)-4:]) {
		t.Fatalf("the printed rotation is not the one applied: %s", out)
	}

	// Every write sends an id of its own; --request-id repeats one.
	for _, args := range [][]string{{"update", rotated.Key.ID, "--name", "n"}, {"disable", rotated.Key.ID}, {"enable", rotated.Key.ID}, {"revoke", rotated.Key.ID}} {
		if code, out, e := run(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, e)
		}
	}
	if n := count("SELECT count(DISTINCT request_id) FROM idempotency_records"); n != 6 {
		t.Fatalf("%d request ids recorded for 6 writes; want one each", n)
	}
	id := "5d9e1c47-3b6a-4f2e-8c1d-0a9b8c7d6e5f"
	var first, again answer
	for _, a := range []*answer{&first, &again} {
		code, out, e := run("create", "--name", "explicit", "--owner", "acme", "--request-id", id, "--json")
		if code != 0 || json.Unmarshal([]byte(out), a) != nil {
			t.Fatalf("create --request-id: exit %d\n%s%s", code, out, e)
		}
	}
	if first.Secret != again.Secret || count("SELECT count(*) FROM api_keys WHERE name = 'explicit'") != 1 {
		t.Fatal("create run twice with one --request-id did not answer the one key twice")
	}
}
