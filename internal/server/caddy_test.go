package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// caddySnippet is the Caddy site of docs/gateways.md, word for word.
const caddySnippet = `http://{{.Front}} {
	# route keeps this order: the client's own identity headers are
	# dropped first, then forward_auth sets keyservice's.
	route {
		request_header -X-Key-Id
		request_header -X-Key-Owner
		request_header -X-Key-Scopes
		forward_auth {{.Keyservice}} {
			uri /v1/auth
			copy_headers X-Key-Id X-Key-Owner X-Key-Scopes
		}
		reverse_proxy {{.Upstream}} {
			header_up -X-API-Key
		}
	}
}`

// TestCaddyForwardAuth runs a real caddy with docs/gateways.md's site: a
// valid key reaches the upstream with the identity headers and without the
// key; wrong, missing and limited keys do not reach it.
func TestCaddyForwardAuth(t *testing.T) {
	t.Parallel()
	caddy := repoTool(t, "caddy", ".ci/run installs it (apt-get install caddy)")
	e := start(t, withConfig(func(c *config.Config) { c.AuthHeader = "X-API-Key" }))
	var mu sync.Mutex
	var seen []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		fmt.Fprint(w, "hello from upstream")
	}))
	defer upstream.Close()
	dir := t.TempDir()
	frontAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var site strings.Builder
	_ = template.Must(template.New("").Parse(caddySnippet)).Execute(&site, map[string]string{
		"Front": frontAddr, "Keyservice": e.srv.HTTPAddr().String(), "Upstream": strings.TrimPrefix(upstream.URL, "http://")})
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + site.String() + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddy, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", frontAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	front := "http://" + frontAddr + "/orders"

	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "web", Owner: "acme", Scopes: []string{"orders:read"},
		RateLimit: &keyservicev1.RateLimit{Limit: 2, Period: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	// The client's own identity headers are not believed.
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret(), "X-Key-Scopes": "admin", "X-Key-Owner": "mallory"}); resp.StatusCode != 200 {
		t.Fatalf("valid key through caddy: %d\n%s", resp.StatusCode, logs.String())
	}
	mu.Lock()
	got := seen[len(seen)-1]
	mu.Unlock()
	if got.Get("X-Key-Id") != created.GetKey().GetId() || got.Get("X-Key-Owner") != "acme" || got.Get("X-Key-Scopes") != "orders:read" {
		t.Fatalf("upstream identity headers: %v", got)
	}
	if got.Get("X-Api-Key") != "" {
		t.Fatal("the key reached the upstream")
	}
	reached := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	before := reached()
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret() + "x"}); resp.StatusCode != 401 {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	if resp := get(t, front, nil); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret()}); resp.StatusCode != 200 {
		t.Fatalf("second (last) allowed call: %d", resp.StatusCode)
	}
	before++
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret()}); resp.StatusCode != 429 {
		t.Fatalf("limited key: %d", resp.StatusCode)
	}
	if n := reached(); n != before {
		t.Fatalf("wrong, missing or limited keys reached the upstream (%d calls, want %d)", n, before)
	}
}
