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

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestForwardAuthEndpoint(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "fa", Owner: "acme", Scopes: []string{"read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	url := e.base + "/v1/auth"
	resp := get(t, url, map[string]string{"Authorization": "Bearer " + created.GetSecret()})
	if resp.StatusCode != 200 || resp.Header.Get("X-Key-Id") != created.GetKey().GetId() ||
		resp.Header.Get("X-Key-Owner") != "acme" || resp.Header.Get("X-Key-Scopes") != "read,write" {
		t.Fatalf("valid key: %d %v", resp.StatusCode, resp.Header)
	}
	for name, hdr := range map[string]map[string]string{
		"missing":    nil,
		"wrong":      {"Authorization": "Bearer " + created.GetSecret() + "x"},
		"not bearer": {"Authorization": "Basic " + created.GetSecret()},
	} {
		resp := get(t, url, hdr)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s key: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	limited, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "l", Owner: "acme",
		RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Authorization": "Bearer " + limited.GetSecret()}
	if resp := get(t, url, h); resp.StatusCode != 200 {
		t.Fatalf("limited key, first call: %d", resp.StatusCode)
	}
	if resp := get(t, url, h); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("limited key, second call: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestForwardAuthUnavailableBeforeTheFilterLoads(t *testing.T) {
	t.Parallel()
	e := startOn(t, newEmptyDatabase(t)) // never migrated: the filter cannot load
	k, _ := keyFormatKey(t)
	if resp := get(t, e.base+"/v1/auth", map[string]string{"Authorization": "Bearer " + k}); resp.StatusCode != 503 {
		t.Fatalf("store unavailable: %d, want 503", resp.StatusCode)
	}
}

var nginxConf = template.Must(template.New("").Parse(`
daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  server {
    listen 127.0.0.1:{{.Port}};
{{.Snippet}}
    location / {
      auth_request /_keyservice_auth;
      auth_request_set $key_id $upstream_http_x_key_id;
      auth_request_set $key_owner $upstream_http_x_key_owner;
      auth_request_set $key_scopes $upstream_http_x_key_scopes;
      auth_request_set $auth_status $upstream_status;
      auth_request_set $auth_retry_after $upstream_http_retry_after;
      auth_request_set $auth_challenge $upstream_http_www_authenticate;
      add_header WWW-Authenticate $auth_challenge always;
      error_page 500 = @keyservice_error;

      proxy_set_header X-Key-Id $key_id;
      proxy_set_header X-Key-Owner $key_owner;
      proxy_set_header X-Key-Scopes $key_scopes;
      proxy_set_header X-API-Key "";
      proxy_pass http://{{.Upstream}};
    }
    # auth_request treats any answer but 2xx, 401 and 403 as an error (500):
    # turn keyservice's 429 and 503 back into themselves.
    location @keyservice_error {
      if ($auth_status = 429) {
        add_header Retry-After $auth_retry_after always;
        return 429;
      }
      if ($auth_status = 503) {
        return 503;
      }
      return 500;
    }
  }
}
`))

// nginxSnippet is the auth location of docs/gateways.md (its first lines).
const nginxSnippet = `    location = /_keyservice_auth {
      internal;
      proxy_pass http://{{.Keyservice}}/v1/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestNginxAuthRequest(t *testing.T) {
	t.Parallel()
	nginx := repoTool(t, "nginx", ".ci/run installs it (apt-get install nginx)")
	e := start(t, withConfig(func(c *config.Config) { c.AuthHeader = "X-API-Key" }))
	ctx := context.Background()

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
	port := freePort(t)
	var snippet strings.Builder
	_ = template.Must(template.New("").Parse(nginxSnippet)).Execute(&snippet, map[string]string{"Keyservice": e.srv.HTTPAddr().String()})
	f, err := os.Create(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nginxConf.Execute(f, map[string]any{"Dir": dir, "Port": port, "Snippet": snippet.String(),
		"Upstream": strings.TrimPrefix(upstream.URL, "http://")}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(nginx, "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	front := fmt.Sprintf("http://127.0.0.1:%d/orders", port)
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	created, err := e.grpc.CreateKey(admin(ctx), &keyservicev1.CreateKeyRequest{Name: "web", Owner: "acme", Scopes: []string{"orders:read"},
		RateLimit: &keyservicev1.RateLimit{Limit: 2, Period: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret()})
	if resp.StatusCode != 200 {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("valid key through nginx: %d\n%s", resp.StatusCode, b)
	}
	mu.Lock()
	got := seen[len(seen)-1]
	mu.Unlock()
	if got.Get("X-Key-Id") != created.GetKey().GetId() || got.Get("X-Key-Owner") != "acme" || got.Get("X-Key-Scopes") != "orders:read" {
		t.Fatalf("upstream identity headers: %v", got)
	}
	if got.Get("X-Api-Key") != "" {
		t.Fatal("the key header reached the upstream")
	}

	reached := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	before := reached()
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret() + "x"}); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong key: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get(t, front, nil); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret()}); resp.StatusCode != 200 {
		t.Fatalf("second (last) allowed call: %d", resp.StatusCode)
	}
	before++
	if resp := get(t, front, map[string]string{"X-API-Key": created.GetSecret()}); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("limited key: %d %v", resp.StatusCode, resp.Header)
	}
	if n := reached(); n != before {
		t.Fatalf("wrong, missing or limited keys reached the upstream (%d calls, want %d)", n, before)
	}
}
