package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// githubKeys writes a public-keys file in GitHub's shape for a fresh P-256
// key pair (this machine cannot reach GitHub) and returns the signer.
func githubKeys(t *testing.T) (path string, sign func([]byte) string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"public_keys": []map[string]any{{
		"key_identifier": "test-key-1", "is_current": true,
		"key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}}}
	raw, _ := json.Marshal(doc)
	path = filepath.Join(t.TempDir(), "github-keys.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func(body []byte) string {
		d := sha256.Sum256(body)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
}

func postReport(t *testing.T, e *env, body []byte, id, sig string) (int, []map[string]string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/v1/secret-scanning/reports", bytes.NewReader(body))
	if id != "" {
		req.Header.Set("GITHUB-PUBLIC-KEY-IDENTIFIER", id)
	}
	if sig != "" {
		req.Header.Set("GITHUB-PUBLIC-KEY-SIGNATURE", sig)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out []map[string]string
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer %q: %v", raw, err)
		}
	}
	return resp.StatusCode, out
}

// TestLeakReportsRevokeLiveKeysOnce: a signed report revokes our key
// (VALID before, REVOKED at once after), labels tokens, records the URL,
// and delivered twice revokes once and answers the same; bad, missing and
// foreign signatures are 401 and change nothing; no token reaches the log.
func TestLeakReportsRevokeLiveKeysOnce(t *testing.T) {
	t.Parallel()
	path, sign := githubKeys(t)
	e := start(t, withConfig(func(c *config.Config) { c.ScanningKeysFile = path }))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "leaky", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	secret := created.GetSecret()
	body := []byte(fmt.Sprintf(`[{"token":%q,"type":"keyservice_api_key","url":"https://github.com/x/y/blob/main/.env","source":"content"},`+
		`{"token":"ks_notours0000000000000000000000000000","type":"keyservice_api_key","url":"https://github.com/x/y/blob/main/b","source":"content"}]`, secret))

	for name, c := range map[string]struct{ id, sig string }{
		"missing signature":         {"test-key-1", ""},
		"unknown key id":            {"other", sign(body)},
		"signature of another body": {"test-key-1", sign([]byte("[]"))},
		"garbage signature":         {"test-key-1", "bm90IGEgc2lnbmF0dXJl"},
	} {
		if code, _ := postReport(t, e, body, c.id, c.sig); code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", name, code)
		}
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret}); r.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("after refused reports the key is %v, want still VALID", r.GetCode())
	}

	var first []map[string]string
	for i := 0; i < 2; i++ {
		code, out := postReport(t, e, body, "test-key-1", sign(body))
		if code != 200 || len(out) != 2 {
			t.Fatalf("report %d: %d %v", i+1, code, out)
		}
		if out[0]["label"] != "true_positive" || out[1]["label"] != "false_positive" || out[0]["token_raw"] != secret || out[0]["token_type"] != "keyservice_api_key" {
			t.Fatalf("report %d: %v", i+1, out)
		}
		if i == 0 {
			first = out
		} else if fmt.Sprint(out) != fmt.Sprint(first) {
			t.Fatalf("the same report twice answered differently: %v then %v", first, out)
		}
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret}); r.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("a reported key is %v, want REVOKED", r.GetCode())
	}
	var reports int
	var action, url string
	if err := e.queryRow(t, "SELECT count(*), min(action), min(url) FROM leak_reports", &reports, &action, &url); err != nil {
		t.Fatal(err)
	}
	if reports != 1 || action != "revoked" || !strings.HasSuffix(url, ".env") {
		t.Fatalf("recorded %d reports (%s, %s), want 1 revoked with its URL", reports, action, url)
	}
	if strings.Contains(e.logs.String(), secret[3:20]) {
		t.Fatal("a reported token reached the log")
	}
}

// TestLeakReportsOnlyFlagWhenConfigured: with KEYSERVICE_SCANNING_ACTION=flag
// a reported key stays valid and the report is recorded.
func TestLeakReportsOnlyFlagWhenConfigured(t *testing.T) {
	t.Parallel()
	path, sign := githubKeys(t)
	e := start(t, withConfig(func(c *config.Config) { c.ScanningKeysFile, c.ScanningAction = path, "flag" }))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "leaky", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(fmt.Sprintf(`[{"token":%q,"type":"t","url":"https://example.com/a","source":"content"}]`, created.GetSecret()))
	if code, out := postReport(t, e, body, "test-key-1", sign(body)); code != 200 || out[0]["label"] != "true_positive" {
		t.Fatalf("%d %v", code, out)
	}
	if r, _ := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: created.GetSecret()}); r.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("a flagged key is %v, want VALID", r.GetCode())
	}
	var action string
	if err := e.queryRow(t, "SELECT action FROM leak_reports", &action); err != nil || action != "flagged" {
		t.Fatalf("recorded %q, %v", action, err)
	}
}

// TestLeakReportWithALongURLActsOnEveryToken: a signed report whose first
// token was found at a 3,000-character URL revokes both reported keys and
// records both (the URL whole); a token whose record cannot be written
// does not stop the others: the report answers 503 (GitHub retries), the
// other key is revoked and recorded, and that key is revoked together
// with its record or not at all, so the retry records it as revoked.
func TestLeakReportWithALongURLActsOnEveryToken(t *testing.T) {
	t.Parallel()
	path, sign := githubKeys(t)
	e := start(t, withConfig(func(c *config.Config) { c.ScanningKeysFile = path }))
	ctx := admin(context.Background())
	var secrets, ids []string
	for i := 0; i < 3; i++ {
		created, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "leaky", Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		secrets, ids = append(secrets, created.GetSecret()), append(ids, created.GetKey().GetId())
	}
	// Random, so that it does not compress: an index entry holds about
	// 2,700 bytes after compression.
	noise := make([]byte, 3000)
	_, _ = rand.Read(noise)
	longURL := ("https://github.com/x/y/blob/main/" + base64.RawURLEncoding.EncodeToString(noise))[:3000]
	body := []byte(fmt.Sprintf(`[{"token":%q,"type":"t","url":%q,"source":"content"},{"token":%q,"type":"t","url":"https://example.com/b","source":"content"}]`,
		secrets[0], longURL, secrets[1]))
	if code, out := postReport(t, e, body, "test-key-1", sign(body)); code != 200 || len(out) != 2 || out[0]["label"] != "true_positive" || out[1]["label"] != "true_positive" {
		t.Fatalf("report with a %d-character URL: %d %v", len(longURL), code, out)
	}
	for i := 0; i < 2; i++ {
		if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[i]}); v.GetCode() != keyservicev1.Code_CODE_REVOKED {
			t.Fatalf("reported key %d is %v, want REVOKED", i+1, v.GetCode())
		}
	}
	var n, longest int
	if err := e.queryRow(t, "SELECT count(*), max(length(url)) FROM leak_reports WHERE action = 'revoked'", &n, &longest); err != nil {
		t.Fatal(err)
	}
	if n != 2 || longest != len(longURL) {
		t.Fatalf("recorded %d revocations, longest URL %d characters; want 2 and %d", n, longest, len(longURL))
	}

	// A token whose record fails: the others are still acted on.
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), e.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE OR REPLACE FUNCTION refuse_leak() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.key_id = '` + ids[2] + `' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse_leak BEFORE INSERT ON leak_reports FOR EACH ROW EXECUTE FUNCTION refuse_leak()`)
	body2 := []byte(fmt.Sprintf(`[{"token":%q,"type":"t","url":"https://example.com/c","source":"content"},{"token":%q,"type":"t","url":"https://example.com/d","source":"content"}]`,
		secrets[2], secrets[1]))
	if code, _ := postReport(t, e, body2, "test-key-1", sign(body2)); code != http.StatusServiceUnavailable {
		t.Fatalf("a report with a token that could not be recorded: %d, want 503 so that it is retried", code)
	}
	if err := e.queryRow(t, "SELECT count(*) FROM leak_reports WHERE url = 'https://example.com/d' AND action = 'already_revoked'", &n); err != nil || n != 1 {
		t.Fatalf("the token after the failed one was not recorded: %d %v", n, err)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[2]}); v.GetCode() != keyservicev1.Code_CODE_VALID {
		t.Fatalf("a key whose report was not recorded is %v, want still VALID (revoked with its record or not at all)", v.GetCode())
	}
	exec("DROP TRIGGER refuse_leak ON leak_reports")
	if code, out := postReport(t, e, body2, "test-key-1", sign(body2)); code != 200 || out[0]["label"] != "true_positive" {
		t.Fatalf("the retry: %d %v", code, out)
	}
	var action string
	if err := e.queryRow(t, "SELECT action FROM leak_reports WHERE key_id = '"+ids[2]+"'", &action); err != nil || action != "revoked" {
		t.Fatalf("the retried token is recorded %q (%v), want revoked", action, err)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secrets[2]}); v.GetCode() != keyservicev1.Code_CODE_REVOKED {
		t.Fatalf("after the retry the key is %v, want REVOKED", v.GetCode())
	}
}

// TestLeakRevocationIsAuditedWithARequestID: a revocation by a leak report
// is audited with the report's request id — the X-Request-Id it came with,
// or one made for it — which the answer carries in X-Request-Id, as every
// API answer does.
func TestLeakRevocationIsAuditedWithARequestID(t *testing.T) {
	t.Parallel()
	path, sign := githubKeys(t)
	e := start(t, withConfig(func(c *config.Config) { c.ScanningKeysFile = path }))
	for _, sent := range []string{"gh-delivery-1", ""} {
		created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "leaky", Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(fmt.Sprintf(`[{"token":%q,"type":"t","url":"https://example.com/a","source":"content"}]`, created.GetSecret()))
		req, _ := http.NewRequest("POST", e.base+"/v1/secret-scanning/reports", bytes.NewReader(body))
		req.Header.Set("GITHUB-PUBLIC-KEY-IDENTIFIER", "test-key-1")
		req.Header.Set("GITHUB-PUBLIC-KEY-SIGNATURE", sign(body))
		if sent != "" {
			req.Header.Set("X-Request-Id", sent)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		answered := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 200 || answered == "" || (sent != "" && answered != sent) {
			t.Fatalf("report sent with X-Request-Id %q: %d, answered with X-Request-Id %q", sent, resp.StatusCode, answered)
		}
		list, err := e.grpc.ListAuditEvents(admin(context.Background()), &keyservicev1.ListAuditEventsRequest{KeyId: created.GetKey().GetId()})
		if err != nil || len(list.GetEvents()) == 0 {
			t.Fatalf("audit events: %v %v", list, err)
		}
		ev := list.GetEvents()[0]
		if ev.GetAction() != "revoke" || ev.GetActor() != "secret-scanning" || ev.GetRequestId() != answered {
			t.Fatalf("the revocation's audit event: %v, want actor secret-scanning and request id %q", ev, answered)
		}
	}
}
