package server_test

import (
	"context"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/keyservice/keyservice/internal/config"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// signIn signs c in with tok and returns the keys page.
func signIn(t *testing.T, e *env, c *http.Client, tok string) string {
	t.Helper()
	code, h, _ := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {tok}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %v", code, h)
	}
	code, _, page := fetch(t, c, "GET", e.base+"/console/keys", nil)
	if code != http.StatusOK {
		t.Fatalf("keys page: %d\n%s", code, page)
	}
	return page
}

// follow fetches a redirect's target.
func follow(t *testing.T, e *env, c *http.Client, code int, h http.Header) (int, http.Header, string) {
	t.Helper()
	if code != http.StatusSeeOther {
		t.Fatalf("want a redirect, got %d", code)
	}
	return fetch(t, c, "GET", e.base+h.Get("Location"), nil)
}

var secretField = regexp.MustCompile(`id="secret" value="([^"]+)"`)

// The console's writes, end to end over HTTP: create (the secret once),
// the key page with usage after validations, update, disable, rotate
// (the new secret once), revoke after a confirmation naming the key, and
// the audit trail of it all.
func TestConsoleKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole, withConfig(func(c *config.Config) { c.UsageFlushInterval = 100 * time.Millisecond }))
	c := browser(t)
	page := signIn(t, e, c, adminToken)
	csrf := csrfOf(t, page)
	if !strings.Contains(page, `id="new-key"`) {
		t.Fatal("an admin sees no 'Create a key'")
	}
	code, _, form := fetch(t, c, "GET", e.base+"/console/keys/new", nil)
	if code != http.StatusOK || !strings.Contains(form, `id="create-key"`) {
		t.Fatalf("new key page: %d", code)
	}
	// Bad input: the form again, with the error, and nothing made.
	code, _, again := fetch(t, c, "POST", e.base+"/console/keys", url.Values{"csrf": {csrf}, "name": {"k"}, "owner": {"acme"}, "allowed_cidrs": {"not-a-cidr"}})
	if code != http.StatusBadRequest || !strings.Contains(again, `role="alert"`) || !strings.Contains(again, `value="acme"`) {
		t.Fatalf("bad CIDR: %d\n%s", code, again)
	}
	code, h, _ := fetch(t, c, "POST", e.base+"/console/keys", url.Values{"csrf": {csrf}, "name": {"console made"}, "owner": {"acme"}, "scopes": {"read write"}, "credits": {"50"}})
	loc := h.Get("Location")
	if !strings.HasPrefix(loc, "/console/keys/") {
		t.Fatalf("create: %d, to %q", code, loc)
	}
	id := strings.TrimPrefix(loc, "/console/keys/")
	_, _, kp := follow(t, e, c, code, h)
	m := secretField.FindStringSubmatch(kp)
	if m == nil {
		t.Fatalf("the new key's page does not show the secret:\n%s", kp)
	}
	secret := m[1]
	if strings.Contains(loc, secret) {
		t.Fatal("the secret is in the address")
	}
	// Once: the same page again shows it no more.
	if _, _, kp2 := fetch(t, c, "GET", e.base+loc, nil); strings.Contains(kp2, secret) || strings.Contains(kp2, `id="secret"`) {
		t.Fatal("the secret is shown again on reload")
	}
	// Usage: validations show up in the charts' numbers.
	for range 3 {
		if r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret}); err != nil || !r.GetValid() {
			t.Fatalf("validate: %v %v", r, err)
		}
	}
	waitFor(t, func() bool {
		_, _, kp := fetch(t, c, "GET", e.base+loc, nil)
		return strings.Contains(kp, "3 valid, 0 over a limit, 0 refused.") && strings.Contains(kp, "3 credits spent by Validate")
	})
	// Update and disable.
	code, _, _ = fetch(t, c, "POST", e.base+loc+"/update", url.Values{"csrf": {csrf}, "name": {"renamed"}, "scopes": {"read"}, "allowed_cidrs": {""}, "expires_at": {""},
		"orig_name": {"console made"}, "orig_scopes": {"read write"}, "orig_allowed_cidrs": {""}, "orig_expires_at": {""}})
	if code != http.StatusSeeOther {
		t.Fatalf("update: %d", code)
	}
	if code, _, _ = fetch(t, c, "POST", e.base+loc+"/enabled", url.Values{"csrf": {csrf}, "enabled": {"false"}}); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret}); r.GetCode() != keyservicev1.Code_CODE_DISABLED {
		t.Fatalf("after disable: %v", r.GetCode())
	}
	if code, _, _ = fetch(t, c, "POST", e.base+loc+"/enabled", url.Values{"csrf": {csrf}, "enabled": {"true"}}); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	// Rotate with an hour's grace: the new key's page shows its secret once.
	code, h, _ = fetch(t, c, "POST", e.base+loc+"/rotate", url.Values{"csrf": {csrf}, "grace": {"1h"}})
	newLoc := h.Get("Location")
	_, _, np := follow(t, e, c, code, h)
	m = secretField.FindStringSubmatch(np)
	if m == nil || newLoc == loc || !strings.Contains(np, `id="rotated-from"`) {
		t.Fatalf("rotate: to %q, page:\n%s", newLoc, np)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: m[1]}); !r.GetValid() {
		t.Fatalf("the rotated key: %v", r.GetCode())
	}
	// Revoke: a GET asks, naming the key; the POST without confirm asks again.
	_, _, ask := fetch(t, c, "GET", e.base+newLoc+"/revoke", nil)
	if !strings.Contains(ask, `id="confirm-name">renamed<`) {
		t.Fatalf("the confirmation does not name the key:\n%s", ask)
	}
	if code, h, _ = fetch(t, c, "POST", e.base+newLoc+"/revoke", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || h.Get("Location") != newLoc+"/revoke" {
		t.Fatalf("revoke without confirm: %d %s", code, h.Get("Location"))
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: m[1]}); !r.GetValid() {
		t.Fatal("revoked without a confirmation")
	}
	if code, _, _ = fetch(t, c, "POST", e.base+newLoc+"/revoke", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: m[1]}); r.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("after revoke: %v", r.GetCode())
	}
	// The audit trail, filtered to the first key.
	_, _, audit := fetch(t, c, "GET", e.base+"/console/audit?key="+url.QueryEscape(id), nil)
	for _, action := range []string{"create", "update", "disable", "enable", "rotate"} {
		if !strings.Contains(audit, `class="action">`+action+`<`) {
			t.Errorf("audit trail of the key lacks %q", action)
		}
	}
	_, _, all := fetch(t, c, "GET", e.base+"/console/audit", nil)
	if !strings.Contains(all, `class="action">revoke<`) {
		t.Error("audit trail lacks the revocation")
	}
	for _, p := range []string{kp, np, audit, all} {
		if strings.Contains(p, adminToken) {
			t.Fatal("the credential's token is in a page")
		}
	}
	if strings.Contains(e.logs.String(), secret) || strings.Contains(e.logs.String(), m[1]) || strings.Contains(e.logs.String(), adminToken) {
		t.Fatal("a secret is in the logs")
	}
}

// Search by name or hint and filter by state; the next page keeps them.
func TestConsoleSearchesKeys(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	c := browser(t)
	signIn(t, e, c, adminToken)
	var hint string
	for i := range 120 {
		name := "bulk"
		if i == 60 {
			name = "The Needle"
		}
		_, r := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: name, Owner: "acme"})
		if i == 61 {
			hint = r.GetHint()
			if _, err := e.grpc.RevokeKey(admin(context.Background()), &keyservicev1.RevokeKeyRequest{Id: r.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, _, p := fetch(t, c, "GET", e.base+"/console/keys?q=needle", nil)
	if n := strings.Count(p, `class="key-link"`); n != 1 || !strings.Contains(p, "The Needle") {
		t.Fatalf("search 'needle': %d rows", n)
	}
	last4 := hint[len(hint)-4:]
	_, _, p = fetch(t, c, "GET", e.base+"/console/keys?q="+url.QueryEscape(last4), nil)
	if !strings.Contains(p, hint) {
		t.Fatalf("search by the hint's last four %q: not found", last4)
	}
	_, _, p = fetch(t, c, "GET", e.base+"/console/keys?state=revoked", nil)
	if n := strings.Count(p, `class="key-link"`); n != 1 || !strings.Contains(p, hint) {
		t.Fatalf("revoked: %d rows", n)
	}
	_, _, p = fetch(t, c, "GET", e.base+"/console/keys?state=active&q=bulk", nil)
	if n := strings.Count(p, `class="key-link"`); n != 50 {
		t.Fatalf("active bulk, first page: %d rows, want 50", n)
	}
	next := regexp.MustCompile(`id="next-page" href="([^"]+)"|href="([^"]+)" id="next-page"`).FindStringSubmatch(p)
	if next == nil {
		t.Fatal("no next page")
	}
	u := strings.ReplaceAll(next[1]+next[2], "&amp;", "&")
	if !strings.Contains(u, "state=active") || !strings.Contains(u, "q=bulk") {
		t.Fatalf("the next page lost its filters: %s", u)
	}
	if code, _, p := fetch(t, c, "GET", e.base+u, nil); code != http.StatusOK || strings.Count(p, `class="key-link"`) != 50 {
		t.Fatalf("second page: %d", code)
	}
}

// A credential that may only read sees no write control, and its writes,
// forged with its own valid session and CSRF token, are refused by the
// service (403). A credential of keyspace A never sees B's keys.
func TestConsoleReadOnlyAndKeyspaceBound(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	ctx := admin(context.Background())
	for _, ks := range []string{"alpha", "beta"} {
		if _, err := e.grpc.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: ks, Prefix: ks[:2]}}); err != nil {
			t.Fatal(err)
		}
	}
	_, a := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "alpha-key", Owner: "o", Keyspace: "alpha"})
	_, b := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "beta-key", Owner: "o", Keyspace: "beta"})
	ro, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "reader",
		Permissions: []string{"keys.read", "keyspaces.read", "audit.read", "usage.read"}, Keyspaces: []string{"alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	var page string
	waitFor(t, func() bool {
		code, _, _ := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {ro.GetSecret()}})
		return code == http.StatusSeeOther
	})
	_, _, page = fetch(t, c, "GET", e.base+"/console/keys", nil)
	csrf := csrfOf(t, page)
	if !strings.Contains(page, "alpha-key") || strings.Contains(page, "beta-key") {
		t.Fatalf("keyspace alpha's reader sees:\n%s", page)
	}
	if code, _, _ := fetch(t, c, "GET", e.base+"/console/keys/"+b.GetId(), nil); code != http.StatusNotFound {
		t.Fatalf("beta's key page for alpha's reader: %d, want 404", code)
	}
	_, _, kp := fetch(t, c, "GET", e.base+"/console/keys/"+a.GetId(), nil)
	for _, control := range []string{`id="new-key"`, `id="update-key"`, `id="toggle"`, `id="rotate-key"`, `id="revoke"`, `id="create-credential"`} {
		if strings.Contains(page+kp, control) {
			t.Errorf("a read-only credential sees %s", control)
		}
	}
	if !strings.Contains(kp, `id="usage-24h"`) {
		t.Error("the reader sees no usage chart")
	}
	forged := map[string]url.Values{
		"/console/keys":                           {"name": {"x"}, "owner": {"o"}, "keyspace": {"alpha"}},
		"/console/keys/" + a.GetId() + "/update":  {"name": {"x"}, "orig_name": {"alpha-key"}},
		"/console/keys/" + a.GetId() + "/enabled": {"enabled": {"false"}},
		"/console/keys/" + a.GetId() + "/rotate":  {"grace": {"0s"}},
		"/console/keys/" + a.GetId() + "/revoke":  {"confirm": {"yes"}},
		"/console/credentials":                    {"name": {"mine"}, "permission": {"keys.read"}, "scope": {"all"}},
	}
	for path, form := range forged {
		form.Set("csrf", csrf)
		if code, _, _ := fetch(t, c, "POST", e.base+path, form); code != http.StatusForbidden {
			t.Errorf("forged POST %s: %d, want 403", path, code)
		}
	}
	if r, _ := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: a.GetId()}); r.GetKey().GetName() != "alpha-key" || r.GetKey().GetRevokedAt() != nil || !r.GetKey().GetEnabled() {
		t.Fatalf("a refused write changed the key: %v", r.GetKey())
	}
}

// Credentials: create with chosen permissions (the secret once), list,
// revoke after a confirmation; the new credential signs in with exactly
// what was ticked.
func TestConsoleCredentials(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	c := browser(t)
	page := signIn(t, e, c, adminToken)
	csrf := csrfOf(t, page)
	code, h, _ := fetch(t, c, "POST", e.base+"/console/credentials", url.Values{"csrf": {csrf}, "name": {"ci-reader"},
		"permission": {"keys.read", "keyspaces.read"}, "scope": {"all"}})
	_, _, cp := follow(t, e, c, code, h)
	m := secretField.FindStringSubmatch(cp)
	if m == nil || !strings.Contains(cp, "ci-reader") {
		t.Fatalf("credentials page after create:\n%s", cp)
	}
	if _, _, again := fetch(t, c, "GET", e.base+h.Get("Location"), nil); strings.Contains(again, m[1]) {
		t.Fatal("the credential's secret is shown again")
	}
	other := browser(t)
	waitFor(t, func() bool {
		code, _, _ := fetch(t, other, "POST", e.base+"/console/sign-in", url.Values{"token": {m[1]}})
		return code == http.StatusSeeOther
	})
	if _, _, p := fetch(t, other, "GET", e.base+"/console/keys", nil); strings.Contains(p, `id="new-key"`) || strings.Contains(p, `href="/console/credentials"`) {
		t.Fatal("the new reader sees controls it may not use")
	}
	id := regexp.MustCompile(`/console/credentials/([0-9a-f-]{36})/revoke`).FindStringSubmatch(cp)
	if id == nil {
		t.Fatal("no revoke link")
	}
	if _, _, ask := fetch(t, c, "GET", e.base+id[0], nil); !strings.Contains(ask, `id="confirm-name">ci-reader<`) {
		t.Fatalf("confirmation:\n%s", ask)
	}
	if code, _, _ := fetch(t, c, "POST", e.base+id[0], url.Values{"csrf": {csrf}, "confirm": {"yes"}}); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	waitFor(t, func() bool {
		code, h, _ := fetch(t, other, "GET", e.base+"/console/keys", nil)
		return code == http.StatusSeeOther && h.Get("Location") == "/console/sign-in"
	})
}

// Wrong tokens spend the address's failed-attempt budget: once it is
// spent, even the right token waits (429 with Retry-After); right ones do
// not spend it.
func TestConsoleSignInGoesThroughTheFailedAttemptGuard(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole, withConfig(func(c *config.Config) { c.FailedRate, c.FailedBurst = 0.001, 3 }))
	c := browser(t)
	for range 5 {
		signIn(t, e, c, adminToken) // right ones spend nothing
	}
	for i := range 3 {
		if code, _, _ := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {"wrong-token-0123456789"}}); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	code, h, page := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {adminToken}})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || h.Get("Set-Cookie") != "" || !strings.Contains(page, "Too many failed sign-ins") {
		t.Fatalf("after 3 wrong tokens: %d %v", code, h)
	}
}

// Every page carries the headers, and the pages are well formed enough to
// be served: no template error reaches a user.
func TestConsolePagesCarryTheHeaders(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	c := browser(t)
	signIn(t, e, c, adminToken)
	_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "h", Owner: "o"})
	for _, path := range []string{"/console/keys", "/console/keys/new", "/console/keys/" + k.GetId(), "/console/keys/" + k.GetId() + "/revoke",
		"/console/keyspaces", "/console/audit", "/console/credentials", "/console/assets/console.js", "/console/keys/00000000-0000-0000-0000-000000000000"} {
		code, h, body := fetch(t, c, "GET", e.base+path, nil)
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
		if strings.HasSuffix(path, "0000") {
			if code != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, code)
			}
			continue
		}
		if code != http.StatusOK || strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "html/template") {
			t.Errorf("%s: %d (inline script or style, or a template error)", path, code)
		}
	}
}

// ListKeys' query and state over gRPC: a LIKE wildcard in the query is
// taken literally, an unknown state is INVALID_ARGUMENT, and a page token
// is bound to both.
func TestListKeysByQueryAndState(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	for _, n := range []string{"100% sure", "1000 sure", "under_score", "underXscore"} {
		createKey(t, e, &keyservicev1.CreateKeyRequest{Name: n, Owner: "o"})
	}
	_, dis := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "off", Owner: "o"})
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: dis.GetId()}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}}); err != nil {
		t.Fatal(err)
	}
	names := func(req *keyservicev1.ListKeysRequest) []string {
		r, err := e.grpc.ListKeys(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range r.GetKeys() {
			out = append(out, k.GetName())
		}
		return out
	}
	if got := names(&keyservicev1.ListKeysRequest{Query: "0%"}); len(got) != 1 || got[0] != "100% sure" {
		t.Errorf("query 0%%: %v", got)
	}
	if got := names(&keyservicev1.ListKeysRequest{Query: "R_S"}); len(got) != 1 || got[0] != "under_score" {
		t.Errorf("query R_S: %v", got)
	}
	if got := names(&keyservicev1.ListKeysRequest{State: keyservicev1.KeyState_KEY_STATE_DISABLED}); len(got) != 1 || got[0] != "off" {
		t.Errorf("disabled: %v", got)
	}
	if got := names(&keyservicev1.ListKeysRequest{State: keyservicev1.KeyState_KEY_STATE_ACTIVE}); len(got) != 4 {
		t.Errorf("active: %v", got)
	}
	if _, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{State: 99}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("state 99: %v", err)
	}
	// The same over REST; bad values are 400.
	code, body, _ := e.rest(t, "GET", "/v1/keys?query=R_S&state=KEY_STATE_ACTIVE", adminToken, "")
	if ks, _ := body["keys"].([]any); code != http.StatusOK || len(ks) != 1 || ks[0].(map[string]any)["name"] != "under_score" {
		t.Errorf("REST query R_S, active: %d %v", code, body)
	}
	if code, body, _ := e.rest(t, "GET", "/v1/keys?state=KEY_STATE_DISABLED", adminToken, ""); code != http.StatusOK || len(body["keys"].([]any)) != 1 {
		t.Errorf("REST disabled: %d %v", code, body)
	}
	for _, q := range []string{"state=GONE", "state=99", "query=" + strings.Repeat("x", 201)} {
		if code, _, _ := e.rest(t, "GET", "/v1/keys?"+q, adminToken, ""); code != http.StatusBadRequest {
			t.Errorf("REST %s: %d, want 400", q[:min(len(q), 20)], code)
		}
	}
	r, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Query: "sure", PageSize: 1})
	if err != nil || r.GetNextPageToken() == "" {
		t.Fatal(r, err)
	}
	if _, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Query: "score", PageSize: 1, PageToken: r.GetNextPageToken()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a token of another query: %v", err)
	}
}

// ListKeys newest first, over gRPC, REST and in the console: the newest
// key on the first page, a page token bound to the order (oldest-first
// tokens unchanged, so a replica of the release before still takes them).
func TestListKeysNewestFirst(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	ctx := admin(context.Background())
	for _, n := range []string{"first", "second", "third"} {
		createKey(t, e, &keyservicev1.CreateKeyRequest{Name: n, Owner: "order"})
	}
	names := func(r *keyservicev1.ListKeysResponse, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range r.GetKeys() {
			out = append(out, k.GetName())
		}
		return strings.Join(out, " ")
	}
	if got := names(e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "order"})); got != "first second third" {
		t.Errorf("oldest first: %q", got)
	}
	r, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "order", NewestFirst: true, PageSize: 2})
	if got := names(r, err); got != "third second" || r.GetNextPageToken() == "" {
		t.Fatalf("newest first, page 1: %q, next %q", got, r.GetNextPageToken())
	}
	if got := names(e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "order", NewestFirst: true, PageSize: 2, PageToken: r.GetNextPageToken()})); got != "first" {
		t.Errorf("newest first, page 2: %q", got)
	}
	if _, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "order", PageSize: 2, PageToken: r.GetNextPageToken()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a newest-first token, asked oldest first: %v", err)
	}
	code, body, _ := e.rest(t, "GET", "/v1/keys?owner=order&newest_first=true", adminToken, "")
	if ks, _ := body["keys"].([]any); code != http.StatusOK || len(ks) != 3 || ks[0].(map[string]any)["name"] != "third" {
		t.Errorf("REST newest first: %d %v", code, body)
	}

	c := browser(t)
	signIn(t, e, c, adminToken)
	order := func(path string) []string {
		code, _, page := fetch(t, c, "GET", e.base+path, nil)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		return regexp.MustCompile(`class="key-link"[^>]*>(first|second|third)<`).FindAllString(page, -1)
	}
	if got := order("/console/keys?owner=order"); len(got) != 3 || !strings.Contains(got[0], "third") || !strings.Contains(got[2], "first") {
		t.Errorf("the console's keys, by default: %v, want newest first", got)
	}
	if got := order("/console/keys?owner=order&order=oldest"); len(got) != 3 || !strings.Contains(got[0], "first") {
		t.Errorf("the console's keys, oldest first: %v", got)
	}
	// The next page keeps the order (its token is bound to it).
	for range 51 {
		createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "filler", Owner: "many"})
	}
	_, _, page := fetch(t, c, "GET", e.base+"/console/keys?owner=many&order=oldest", nil)
	next := regexp.MustCompile(`href="(/console/keys\?[^"]*)" id="next-page"`).FindStringSubmatch(page)
	if next == nil || !strings.Contains(next[1], "order=oldest") {
		t.Fatalf("oldest first, 51 keys: next page link %v, want one keeping order=oldest", next)
	}
	if code, _, p2 := fetch(t, c, "GET", e.base+html.UnescapeString(next[1]), nil); code != http.StatusOK || strings.Count(p2, `class="key-link"`) != 1 {
		t.Errorf("oldest first, page 2: %d, %d keys", code, strings.Count(p2, `class="key-link"`))
	}
}

// Review findings, each a test that failed before its fix.
func TestConsoleReviewFindings(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	ctx := admin(context.Background())
	c := browser(t)
	csrf := csrfOf(t, signIn(t, e, c, adminToken))

	t.Run("saving the name keeps the exact expiry, and works on an expired key", func(t *testing.T) {
		exp := time.Now().Add(50 * time.Hour).Truncate(time.Second)
		_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "exp", Owner: "o", ExpiresAt: timestamppb.New(exp)})
		_, _, kp := fetch(t, c, "GET", e.base+"/console/keys/"+k.GetId(), nil)
		day := regexp.MustCompile(`id="expires_at" name="expires_at" value="([^"]*)"`).FindStringSubmatch(kp)
		if day == nil {
			t.Fatal("no expiry field")
		}
		if code, _, _ := fetch(t, c, "POST", e.base+"/console/keys/"+k.GetId()+"/update", url.Values{"csrf": {csrf}, "name": {"renamed"}, "scopes": {""}, "allowed_cidrs": {""}, "expires_at": {day[1]},
			"orig_name": {"exp"}, "orig_scopes": {""}, "orig_allowed_cidrs": {""}, "orig_expires_at": {day[1]}}); code != http.StatusSeeOther {
			t.Fatalf("update: %d", code)
		}
		r, _ := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()})
		if r.GetKey().GetName() != "renamed" || !r.GetKey().GetExpiresAt().AsTime().Equal(exp) {
			t.Fatalf("after a rename: name %q, expiry %v, want %v", r.GetKey().GetName(), r.GetKey().GetExpiresAt().AsTime(), exp)
		}
	})

	t.Run("saving does not write back what another operator changed meanwhile", func(t *testing.T) {
		_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "shared", Owner: "o", Scopes: []string{"a", "b"}})
		// The form is drawn with scopes "a b"; another operator narrows them.
		if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Scopes: []string{"a"}}, UpdateMask: mask("scopes")}); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"csrf": {csrf}, "name": {"shared2"}, "scopes": {"a b"}, "allowed_cidrs": {""}, "expires_at": {""},
			"orig_name": {"shared"}, "orig_scopes": {"a b"}, "orig_allowed_cidrs": {""}, "orig_expires_at": {""}}
		if code, _, _ := fetch(t, c, "POST", e.base+"/console/keys/"+k.GetId()+"/update", form); code != http.StatusSeeOther {
			t.Fatalf("update: %d", code)
		}
		r, _ := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()})
		if r.GetKey().GetName() != "shared2" || !slices.Equal(r.GetKey().GetScopes(), []string{"a"}) {
			t.Fatalf("after a rename: %q %v, want shared2 [a]", r.GetKey().GetName(), r.GetKey().GetScopes())
		}
	})

	t.Run("a new secret is not shown to another session in the same browser", func(t *testing.T) {
		b := browser(t)
		bcsrf := csrfOf(t, signIn(t, e, b, adminToken))
		code, h, _ := fetch(t, b, "POST", e.base+"/console/keys", url.Values{"csrf": {bcsrf}, "name": {"left"}, "owner": {"o"}})
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/keys/") {
			t.Fatalf("create: %d to %q", code, h.Get("Location"))
		}
		// Sign out, sign in again (a new session), then open the page.
		fetch(t, b, "POST", e.base+"/console/sign-out", url.Values{"csrf": {bcsrf}})
		signIn(t, e, b, adminToken)
		if _, _, p := fetch(t, b, "GET", e.base+h.Get("Location"), nil); secretField.FindStringSubmatch(p) != nil {
			t.Fatal("another session sees the secret")
		}
	})

	t.Run("a second new key's secret survives a visit to the first's page", func(t *testing.T) {
		mk := func(name string) string {
			_, h, _ := fetch(t, c, "POST", e.base+"/console/keys", url.Values{"csrf": {csrf}, "name": {name}, "owner": {"o"}})
			return h.Get("Location")
		}
		a, b := mk("first"), mk("second")
		_, _, ap := fetch(t, c, "GET", e.base+a, nil)
		_, _, bp := fetch(t, c, "GET", e.base+b, nil)
		if secretField.FindStringSubmatch(ap) == nil || secretField.FindStringSubmatch(bp) == nil {
			t.Fatal("a new key's secret was lost")
		}
	})

	t.Run("a second click of the same form makes no second key", func(t *testing.T) {
		_, _, form := fetch(t, c, "GET", e.base+"/console/keys/new", nil)
		rid := regexp.MustCompile(`name="request_id" value="([^"]+)"`).FindStringSubmatch(form)
		if rid == nil {
			t.Fatal("no request id in the form")
		}
		v := url.Values{"csrf": {csrf}, "name": {"twice"}, "owner": {"o"}, "request_id": {rid[1]}}
		_, h1, _ := fetch(t, c, "POST", e.base+"/console/keys", v)
		_, h2, _ := fetch(t, c, "POST", e.base+"/console/keys", v)
		if h1.Get("Location") != h2.Get("Location") {
			t.Fatalf("two submissions made two keys: %s, %s", h1.Get("Location"), h2.Get("Location"))
		}
	})

	t.Run("the secret is shown to a credential that may create keys but not read them", func(t *testing.T) {
		cr, err := e.grpc.CreateCredential(ctx, &keyservicev1.CreateCredentialRequest{Name: "maker", Permissions: []string{"keys.create", "keyspaces.read"}, AllKeyspaces: true})
		if err != nil {
			t.Fatal(err)
		}
		m := browser(t)
		var h http.Header
		waitFor(t, func() bool {
			var code int
			code, h, _ = fetch(t, m, "POST", e.base+"/console/sign-in", url.Values{"token": {cr.GetSecret()}})
			return code == http.StatusSeeOther
		})
		_, _, np := fetch(t, m, "GET", e.base+"/console/keys/new", nil)
		_, h, _ = fetch(t, m, "POST", e.base+"/console/keys", url.Values{"csrf": {csrfOf(t, np)}, "name": {"blind"}, "owner": {"o"}})
		_, _, p := fetch(t, m, "GET", e.base+h.Get("Location"), nil)
		if secretField.FindStringSubmatch(p) == nil {
			t.Fatalf("the maker never sees its key's secret:\n%s", p)
		}
	})

	t.Run("a link from another site does not sign the operator out", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.base+"/console/keys", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req) // no cookie: SameSite=Strict
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Set-Cookie") != "" || resp.StatusCode != http.StatusOK {
			t.Fatalf("cross-site link: %d, Set-Cookie %q; want the continue page and no cookie change", resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	})

	t.Run("HEAD of a page is not a refused write", func(t *testing.T) {
		if code, _, _ := fetch(t, c, "HEAD", e.base+"/console/keys", nil); code != http.StatusOK {
			t.Fatalf("HEAD: %d", code)
		}
	})
}

// Behind a trusted proxy each end client has its own sign-in budget: one
// guesser does not lock everyone out.
func TestConsoleSignInGuardIsPerEndClientBehindAProxy(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole, withConfig(func(c *config.Config) {
		c.FailedRate, c.FailedBurst = 0.001, 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}))
	post := func(from, tok string) int {
		req, _ := http.NewRequest("POST", e.base+"/console/sign-in", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := browser(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		post("203.0.113.9", "wrong-token-0123456789")
	}
	if code := post("203.0.113.9", adminToken); code != http.StatusTooManyRequests {
		t.Fatalf("the guesser: %d, want 429", code)
	}
	if code := post("198.51.100.7", adminToken); code != http.StatusSeeOther {
		t.Fatalf("another operator behind the same proxy: %d, want to be signed in", code)
	}
}

// Only a credential that may read something the console shows signs in;
// every sign-in leaves a log line (the credential's name and the client,
// never the token) and a count by outcome.
func TestConsoleSignInIsLoggedAndNeedsAConsolePermission(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	cr, err := e.grpc.CreateCredential(admin(context.Background()), &keyservicev1.CreateCredentialRequest{Name: "validator-only", Permissions: []string{"keys.validate"}, AllKeyspaces: true})
	if err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	waitFor(t, func() bool {
		code, h, _ := fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {cr.GetSecret()}})
		return code == http.StatusForbidden && h.Get("Set-Cookie") == ""
	})
	signIn(t, e, c, adminToken)
	fetch(t, c, "POST", e.base+"/console/sign-in", url.Values{"token": {"wrong-token-0123456789"}})
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"console sign-in","client":"127.0.0.1","credential":"admin-1"`) ||
		!strings.Contains(logs, "console sign-in refused: not a usable credential") ||
		!strings.Contains(logs, `"credential":"validator-only"`) {
		t.Fatalf("sign-ins not logged:\n%s", logs)
	}
	for _, s := range []string{cr.GetSecret(), adminToken, "wrong-token-0123456789"} {
		if strings.Contains(logs, s) {
			t.Fatal("a token is in the logs")
		}
	}
	for outcome, want := range map[string]float64{"signed_in": 1, "refused": 1, "no_permission": 1} {
		if got := metricValue(t, e, `keyservice_console_sign_ins_total{outcome="`+outcome+`"}`); got < want {
			t.Errorf("%s sign-ins counted: %v, want at least %v", outcome, got, want)
		}
	}
}
