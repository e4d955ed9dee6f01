package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/config"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// browser is an HTTP client with cookies that does not follow redirects
// (each test reads where it is sent).
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// csrfOf finds the CSRF token in a page's forms.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	const mark = `name="csrf" value="`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	rest := page[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

// withConsole turns the console on (it is on by default: the tests that
// use it say so).
var withConsole = withConfig(func(c *config.Config) { c.Console = true })

func TestConsoleHeadersSignInAndCSRF(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	c := browser(t)
	// Every answer, signed in or not, carries the headers.
	for _, path := range []string{"/console/sign-in", "/console/keys", "/console/assets/console.css", "/console/"} {
		_, h, _ := fetch(t, c, "GET", e.base+path, nil)
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	// Signed out: sent to sign in.
	if code, h, _ := fetch(t, c, "GET", e.base+"/console/keys", nil); code != http.StatusSeeOther || h.Get("Location") != "/console/sign-in" {
		t.Fatalf("keys signed out: %d %s", code, h.Get("Location"))
	}
	// A wrong token: refused, no cookie.
	if code, h, page := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {"not-a-credential-0123456789"}}); code != http.StatusUnauthorized || h.Get("Set-Cookie") != "" || !strings.Contains(page, "not a credential") {
		t.Fatalf("wrong token: %d %v", code, h)
	}
	// The admin token: a session cookie, HttpOnly and SameSite=Strict,
	// that never holds the token in the clear.
	code, h, _ := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {adminToken}})
	ck := h.Get("Set-Cookie")
	if code != http.StatusSeeOther || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, adminToken) {
		t.Fatalf("sign-in: %d, cookie %q", code, ck)
	}
	createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "console-listed", Owner: "acme"})
	code, _, page := fetch(t, c, "GET", e.base+"/console/keys", nil)
	if code != http.StatusOK || !strings.Contains(page, "console-listed") {
		t.Fatalf("keys page: %d\n%s", code, page)
	}
	if strings.Contains(page, adminToken) {
		t.Fatal("the token is in the page")
	}
	// A write without the session's CSRF token is refused; with it, done.
	if code, _, _ := fetch(t, c, "POST", e.base+"/console/sign-out", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("sign-out with a forged CSRF token: %d, want 403", code)
	}
	if code, _, _ := fetch(t, c, "POST", e.base+"/console/sign-out", url.Values{"csrf": {csrfOf(t, page)}}); code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _, _ := fetch(t, c, "GET", e.base+"/console/keys", nil); code != http.StatusSeeOther {
		t.Fatalf("keys after sign-out: %d, want a redirect to sign in", code)
	}
	if strings.Contains(e.logs.String(), adminToken) {
		t.Fatal("the token is in the logs")
	}
}

// A credential's session ends on the next request once the credential is
// revoked, on a replica other than the one that revoked it.
func TestConsoleSessionEndsWhenItsCredentialIsRevoked(t *testing.T) {
	t.Parallel()
	a := start(t, withConsole)
	b := startOn(t, a.dbURL, withConsole)
	b.waitReady(t)
	ctx := context.Background()
	r, err := a.grpc.CreateCredential(admin(ctx), &keyservicev1.CreateCredentialRequest{Name: "viewer", Permissions: []string{"keys.read", "keyspaces.read"}, AllKeyspaces: true})
	if err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	waitFor(t, func() bool {
		code, _, _ := fetch(t, c, "POST", b.base+"/console/sign-in", url.Values{"token": {r.GetSecret()}})
		return code == http.StatusSeeOther
	})
	if code, _, _ := fetch(t, c, "GET", b.base+"/console/keys", nil); code != http.StatusOK {
		t.Fatalf("keys page for the viewer: %d", code)
	}
	if _, err := a.grpc.RevokeCredential(admin(ctx), &keyservicev1.RevokeCredentialRequest{Id: r.GetCredential().GetId()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		code, h, _ := fetch(t, c, "GET", b.base+"/console/keys", nil)
		return code == http.StatusSeeOther && h.Get("Location") == "/console/sign-in"
	})
}

// On by default; KEYSERVICE_CONSOLE=false turns it off.
func TestConsoleIsOnByDefaultAndCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	on := start(t)
	if code, _, _ := fetch(t, browser(t), "GET", on.base+"/console/sign-in", nil); code != http.StatusOK {
		t.Fatalf("console with the default settings: %d, want 200", code)
	}
	off := start(t, withConfig(func(c *config.Config) { c.Console = false }))
	if code, _, _ := fetch(t, browser(t), "GET", off.base+"/console/sign-in", nil); code != http.StatusNotFound {
		t.Fatalf("console turned off: %d, want 404", code)
	}
}

// Another site cannot sign a visitor in (login CSRF) or post a console
// form; a cookie set for a host name that is not loopback is Secure (a
// console behind a proxy that ends TLS).
func TestConsoleRefusesCrossSiteFormsAndSecuresItsCookie(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	c := browser(t)
	for name, hdr := range map[string][2]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site", "cross-site"},
		"Origin of another site":    {"Origin", "https://evil.example"},
	} {
		req, _ := http.NewRequest("POST", e.base+"/console/sign-in", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(hdr[0], hdr[1])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d, cookie %q; want 403 and none", name, resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	}
	req, _ := http.NewRequest("POST", e.base+"/console/sign-in", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Host = "keys.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(ck, "Secure") {
		t.Fatalf("sign-in for keys.example.com: %d, cookie %q; want Secure", resp.StatusCode, ck)
	}
}
