package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/config"
)

// TestDebugListener: off by default; when set, pprof and the runtime's
// metrics answer on loopback, and none of it is on the service's port.
func TestDebugListener(t *testing.T) {
	t.Parallel()
	if e := start(t); e.srv.DebugAddr() != nil {
		t.Fatalf("a debug listener by default: %v", e.srv.DebugAddr())
	}
	e := start(t, withConfig(func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" }))
	addr := e.srv.DebugAddr()
	if addr == nil || !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Fatalf("debug listener at %v, want loopback", addr)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "http://" + addr.String()
	for path, want := range map[string]string{
		"/debug/pprof/":                     "goroutine",
		"/debug/pprof/goroutine?debug=1":    "goroutine profile",
		"/debug/pprof/heap?debug=1":         "heap profile",
		"/debug/runtime/metrics":            "/gc/heap/allocs:bytes ",
		"/debug/pprof/profile?seconds=1":    "", // a CPU profile (binary)
		"/debug/pprof/trace?seconds=0.1":    "",
		"/debug/pprof/symbol":               "num_symbols",
		"/debug/pprof/cmdline":              "",
		"/debug/pprof/allocs?debug=1":       "heap profile",
		"/debug/pprof/threadcreate?debug=1": "threadcreate profile",
	} {
		code, body := get(base + path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, body lacks %q", path, code, want)
		}
	}
	if code, _, _ := e.rest(t, "GET", "/debug/pprof/", "", ""); code != http.StatusNotFound {
		t.Errorf("pprof on the service's HTTP port: %d, want 404", code)
	}
}
