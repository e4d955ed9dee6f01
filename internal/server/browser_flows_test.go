package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/testdb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// seedConsoleKeys adds n keys to the database at u in one statement (names
// "customer key 1".., owners "owner-0".."owner-99"), before a server
// starts on it.
func seedConsoleKeys(t *testing.T, n int) string {
	t.Helper()
	u, pool := testdb.New(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO api_keys (id, key_hash, hint, name, owner, created_at)
		SELECT gen_random_uuid(), sha256(('seed-' || i)::bytea), 'ks_...' || lpad(to_hex(i % 65536), 4, '0'),
		       'customer key ' || i, 'owner-' || (i % 100), now() - interval '30 days' + i * interval '1 second'
		FROM generate_series(1, $1::int) i`, n)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// value is the value of the form field sel.
func value(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return act(t, ctx, "value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// A new operator's first session, in a real browser among 10,000 keys:
// sign in, create a key and copy its secret (a reload shows it no more),
// find it by search, see its calls in the usage chart, rotate it, revoke
// it after a confirmation naming it, find both in the audit trail, make a
// credential (its secret once), sign out. The screenshots in
// docs/console/ come from here (make screenshots).
func TestConsoleInABrowserKeyLifecycle(t *testing.T) {
	t.Parallel()
	u := seedConsoleKeys(t, 10_000)
	e := startOn(t, u, withConsole, withConfig(func(c *config.Config) { c.UsageFlushInterval = 100 * time.Millisecond }))
	e.waitReady(t)
	ctx := newBrowser(t, e.base)

	visit(t, ctx, e.base+"/console/")
	fill(t, ctx, "#token", adminToken)
	if code := submit(t, ctx, "#sign-in"); code != 200 || location(t, ctx) != e.base+"/console/keys" {
		t.Fatalf("sign-in: %d at %s", code, location(t, ctx))
	}
	shot(t, ctx, "keys")

	// Create: the secret once, and the copy button copies it.
	submit(t, ctx, "#new-key")
	fill(t, ctx, "#name", "Browser Needle")
	fill(t, ctx, "#owner", "acme")
	fill(t, ctx, "#scopes", "chat:write")
	fill(t, ctx, "#credits", "1000")
	if code := submit(t, ctx, "#create"); code != 200 || !strings.HasPrefix(location(t, ctx), e.base+"/console/keys/") {
		t.Fatalf("create: %d at %s", code, location(t, ctx))
	}
	keyPage := location(t, ctx)
	secret := value(t, ctx, "#secret")
	if !strings.HasPrefix(secret, "ks_") || strings.Contains(keyPage, secret) {
		t.Fatalf("secret %q at %s", secret, keyPage)
	}
	click(t, ctx, "#copy")
	if got := clipboardText(t, ctx); got != secret {
		t.Fatalf("the copy button copied %q", got)
	}
	if said := text(t, ctx, "#copied"); said != "Copied." {
		t.Errorf("after copying: %q", said)
	}
	shot(t, ctx, "created")
	visit(t, ctx, keyPage) // a reload
	if exists(t, ctx, "#secret") {
		t.Fatal("the secret is shown again after a reload")
	}
	if html := act(t, ctx, "page", chromedp.Evaluate[string]("document.documentElement.outerHTML")); strings.Contains(html, secret) {
		t.Fatal("the secret is in the page after a reload")
	}

	// Find it among 10,000 by search.
	visit(t, ctx, e.base+"/console/keys")
	fill(t, ctx, "#q", "needle")
	submit(t, ctx, "#search-go")
	if n := len(act(t, ctx, "rows", chromedp.Nodes(chromedp.CSSAll("a.key-link"), chromedp.AtLeast(0)))); n != 1 {
		t.Fatalf("search 'needle' among 10,000: %d rows", n)
	}
	shot(t, ctx, "search")
	submit(t, ctx, "a.key-link")
	if location(t, ctx) != keyPage {
		t.Fatalf("the search result leads to %s, want %s", location(t, ctx), keyPage)
	}

	// Calls show up in the charts: 5 valid, 2 refused (a scope it lacks).
	for i := range 7 {
		req := &keyservicev1.ValidateRequest{Key: secret}
		if i >= 5 {
			req.RequiredScopes = []string{"admin"}
		}
		if _, err := e.grpc.Validate(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		visit(t, ctx, keyPage)
		return exists(t, ctx, "#usage-24h figcaption") && strings.Contains(text(t, ctx, "#usage-24h figcaption"), "5 valid, 0 over a limit, 2 refused.")
	})
	if n := len(act(t, ctx, "bars", chromedp.Nodes(chromedp.CSSAll("#usage-24h svg.bars rect[fill^='url(#usage-24h-dots)']"), chromedp.AtLeast(0)))); n != 1 {
		t.Errorf("the refused calls' bar is not drawn with its pattern: %d", n)
	}
	if !strings.Contains(text(t, ctx, "#credits-30d figcaption"), "5 credits spent by Validate") {
		t.Errorf("credits chart: %q", text(t, ctx, "#credits-30d figcaption"))
	}
	shot(t, ctx, "key")

	// Rotate (24 hours' grace by default): the new key's secret, once.
	if g := value(t, ctx, "#grace"); g != "24h" {
		t.Errorf("the default grace: %q", g)
	}
	submit(t, ctx, "#rotate")
	newPage := location(t, ctx)
	newSecret := value(t, ctx, "#secret")
	if newPage == keyPage || newSecret == "" || !exists(t, ctx, "#rotated-from") {
		t.Fatalf("after rotate: at %s", newPage)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret}); !r.GetValid() {
		t.Errorf("the old key during its grace: %v", r.GetCode())
	}

	// Revoke the new key: the confirmation names it.
	submit(t, ctx, "#revoke")
	if name := text(t, ctx, "#confirm-name"); name != "Browser Needle" {
		t.Fatalf("the confirmation names %q", name)
	}
	submit(t, ctx, "#confirm-revoke")
	if st := text(t, ctx, "p.status .state"); st != "revoked" {
		t.Fatalf("after revoke the key is %q", st)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: newSecret}); r.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("the revoked key: %v", r.GetCode())
	}

	// Both in the audit trail.
	visit(t, ctx, e.base+"/console/audit")
	trail := text(t, ctx, "table#audit")
	for _, action := range []string{"rotate", "revoke", "create"} {
		if !strings.Contains(trail, action) {
			t.Errorf("the audit trail lacks %q:\n%s", action, trail)
		}
	}
	shot(t, ctx, "audit")

	// A credential with chosen permissions: its secret once.
	visit(t, ctx, e.base+"/console/credentials")
	fill(t, ctx, "#cred-name", "dashboard-reader")
	for _, p := range []string{"keys.read", "keyspaces.read", "usage.read"} {
		click(t, ctx, `input[name=permission][value="`+p+`"]`)
	}
	click(t, ctx, "#scope-all")
	submit(t, ctx, "#create-cred")
	credSecret := value(t, ctx, "#secret")
	if credSecret == "" || !strings.Contains(text(t, ctx, "table#credentials"), "dashboard-reader") {
		t.Fatal("no credential made")
	}
	shot(t, ctx, "credentials")
	visit(t, ctx, e.base+"/console/credentials")
	if exists(t, ctx, "#secret") {
		t.Fatal("the credential's secret is shown again")
	}
	visit(t, ctx, e.base+"/console/keyspaces")
	shot(t, ctx, "keyspaces")

	submit(t, ctx, "#sign-out")
	if location(t, ctx) != e.base+"/console/sign-in" {
		t.Fatalf("after sign-out: %s", location(t, ctx))
	}
	shot(t, ctx, "sign-in")

	// No secret, key or token in the logs after the whole run.
	logs := e.logs.String()
	for what, s := range map[string]string{"the key": secret, "the rotated key": newSecret, "the credential": credSecret, "the admin token": adminToken} {
		if strings.Contains(logs, s) {
			t.Errorf("%s is in the logs", what)
		}
	}
}

// In a real browser: a read-only credential of keyspace alpha sees no
// write control and none of beta's keys; its forged writes (its own
// session and CSRF token, posted by hand) are refused; revoked on one
// replica, its session ends on its next request to the other.
func TestConsoleInABrowserReadOnlyKeyspaceAndRevocation(t *testing.T) {
	t.Parallel()
	a := start(t, withConsole)
	b := startOn(t, a.dbURL, withConsole)
	b.waitReady(t)
	ctx := admin(context.Background())
	for _, ks := range []string{"alpha", "beta"} {
		if _, err := a.grpc.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: ks, Prefix: ks}}); err != nil {
			t.Fatal(err)
		}
	}
	_, ak := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "alpha-key", Owner: "o", Keyspace: "alpha"})
	_, bk := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "beta-key", Owner: "o", Keyspace: "beta"})
	cr, err := a.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "alpha-reader",
		Permissions: []string{"keys.read", "keyspaces.read", "usage.read", "audit.read"}, Keyspaces: []string{"alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, a.base)
	visit(t, br, a.base+"/console/sign-in")
	fill(t, br, "#token", cr.GetSecret())
	if code := submit(t, br, "#sign-in"); code != 200 || location(t, br) != a.base+"/console/keys" {
		t.Fatalf("reader sign-in: %d at %s", code, location(t, br))
	}
	table := text(t, br, "table#keys")
	if !strings.Contains(table, "alpha-key") || strings.Contains(table, "beta-key") {
		t.Fatalf("alpha's reader sees:\n%s", table)
	}
	expectProblem(br, "status of 404") // the browser reports the 404 page it is shown
	if code := visit(t, br, a.base+"/console/keys/"+bk.GetId()); code != http.StatusNotFound {
		t.Fatalf("beta's key page: %d, want 404", code)
	}
	checkProblems(t, br)
	forgetExpected(br) // any other 404 from here on fails the test
	visit(t, br, a.base+"/console/keys/"+ak.GetId())
	for _, sel := range []string{"#update-key", "#toggle", "#rotate-key", "#revoke", "#add-credits"} {
		if exists(t, br, sel) {
			t.Errorf("a read-only credential sees %s", sel)
		}
	}
	visit(t, br, a.base+"/console/keys")
	if exists(t, br, "#new-key") || exists(t, br, `a[href="/console/credentials"]`) {
		t.Error("a read-only credential sees 'Create a key' or the credentials")
	}
	shot(t, br, "read-only")

	// Forged writes with the browser's own session.
	ck := cookie(t, br, a.base+"/console/", "keyservice_console")
	csrf := act(t, br, "csrf", chromedp.Evaluate[string](`document.querySelector("input[name=csrf]").value`))
	for path, form := range map[string]url.Values{
		"/console/keys/" + ak.GetId() + "/revoke":  {"confirm": {"yes"}},
		"/console/keys/" + ak.GetId() + "/enabled": {"enabled": {"false"}},
		"/console/keys": {"name": {"forged"}, "owner": {"o"}, "keyspace": {"alpha"}},
	} {
		form.Set("csrf", csrf)
		req, _ := http.NewRequest("POST", a.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Refused by the service (the session and CSRF token are good).
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "may not do that") {
			t.Errorf("forged POST %s: %d, want 403 from the service:\n%s", path, resp.StatusCode, body)
		}
	}
	if r, _ := a.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: ak.GetId()}); r.GetKey().GetRevokedAt() != nil || !r.GetKey().GetEnabled() {
		t.Fatalf("a forged write changed the key: %v", r.GetKey())
	}
	if l, _ := a.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Query: "forged"}); len(l.GetKeys()) != 0 {
		t.Fatal("a forged create made a key")
	}

	// The session works on b (the same seal secret), then, revoked on a,
	// the next request on b ends it.
	visit(t, br, b.base+"/console/keys")
	if !strings.Contains(text(t, br, "table#keys"), "alpha-key") {
		t.Fatal("the session does not work on the other replica")
	}
	if _, err := a.grpc.RevokeCredential(ctx, &keyservicev1.RevokeCredentialRequest{Id: cr.GetCredential().GetId()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		visit(t, br, b.base+"/console/keys")
		return location(t, br) == b.base+"/console/sign-in"
	})
	if cookie(t, br, b.base+"/console/", "keyservice_console") != nil {
		t.Error("the revoked credential's session cookie is still in the browser")
	}
}

// At 200% zoom (a 1280-pixel window shows 640 CSS pixels) the pages
// reflow: nothing but a wide table scrolls sideways, inside its own box;
// and the console can be used from the keyboard alone (sign in with Tab
// and Enter).
func TestConsoleInABrowserAt200PercentAndByKeyboard(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "zoomed", Owner: "acme", Scopes: []string{"read"}})
	ctx := newBrowser(t, e.base)
	act(t, ctx, "zoom", chromedp.EmulateViewport(windowWidth/2, windowHeight))
	visit(t, ctx, e.base+"/console/sign-in")
	// The keyboard: the token field has the focus; Enter submits.
	act(t, ctx, "type", chromedp.KeyEvent(adminToken))
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(sctx, chromedp.KeyEvent("\r")); err != nil || location(t, ctx) != e.base+"/console/keys" {
		t.Fatalf("sign-in by keyboard: %v, at %s", err, location(t, ctx))
	}
	for _, path := range []string{"/console/keys", "/console/keys/" + k.GetId(), "/console/keys/new", "/console/audit", "/console/credentials", "/console/keyspaces"} {
		visit(t, ctx, e.base+path)
		wide := act(t, ctx, "page width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if wide {
			t.Errorf("%s at 200%%: the page scrolls sideways (%s wide in %s)", path,
				act(t, ctx, "w", chromedp.Evaluate[string](`String(document.documentElement.scrollWidth)`)),
				act(t, ctx, "w", chromedp.Evaluate[string](`String(window.innerWidth)`)))
		}
		if path == "/console/keys/"+k.GetId() {
			shot(t, ctx, "zoom-200")
		}
	}
}

// A link to the console followed from another site: the browser does not
// send the SameSite=Strict session with it, so the console shows a link to
// follow instead of signing the operator out; following it, the session
// is there.
func TestConsoleInABrowserLinkFromAnotherSite(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "linked", Owner: "acme"})
	ctx := newBrowser(t, e.base)
	visit(t, ctx, e.base+"/console/sign-in")
	fill(t, ctx, "#token", adminToken)
	submit(t, ctx, "#sign-in")
	// localhost is another site than 127.0.0.1.
	other := strings.Replace(e.base, "127.0.0.1", "localhost", 1)
	visit(t, ctx, other+"/console/sign-in")
	act(t, ctx, "a link to the console", chromedp.Evaluate[bool](`var a = document.createElement("a"); a.id = "out"; a.href = "`+e.base+`/console/keys"; a.textContent = "keys"; document.body.appendChild(a); true`))
	submit(t, ctx, "#out")
	if !exists(t, ctx, "#continue") {
		t.Fatalf("a link from another site: at %s, no continue link", location(t, ctx))
	}
	submit(t, ctx, "#continue")
	if location(t, ctx) != e.base+"/console/keys" || !strings.Contains(text(t, ctx, "table#keys"), "linked") {
		t.Fatalf("after continuing: at %s", location(t, ctx))
	}
}
