package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/config"
)

// specClient sends REST calls to a live server and checks each against the
// OpenAPI file the server serves: the route and its query parameters are
// declared, the request body fits its schema, and the answer fits the
// schema of its status (or the default response), unknown fields and
// nulls the spec does not allow counting as errors.
type specClient struct {
	t    *testing.T
	e    *env
	spec *openAPI
	seen map[string]bool // operationIds called
	// offSpecBody: the next request's body breaks its schema on purpose.
	offSpecBody bool
}

func newSpecClient(t *testing.T, e *env) *specClient {
	resp, err := e.http.Get(e.base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spec openAPI
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil || len(spec.Paths) == 0 {
		t.Fatalf("/openapi.json: %v (%d paths)", err, len(spec.Paths))
	}
	return &specClient{t: t, e: e, spec: &spec, seen: map[string]bool{}}
}

// call sends the request and returns the status and the decoded answer.
func (c *specClient) call(method, target, token, body string) (int, map[string]any) {
	c.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		c.t.Fatal(err)
	}
	op, tmpl := c.spec.operation(method, u.Path)
	var problems []string
	if op == nil {
		c.t.Fatalf("%s %s: no operation in the spec serves it", method, u.Path)
	}
	c.seen[op.OperationID] = true
	declared := map[string]*apiParameter{}
	for i, p := range op.Parameters {
		declared[p.In+":"+p.Name] = &op.Parameters[i]
	}
	for name := range u.Query() {
		if declared["query:"+name] == nil {
			problems = append(problems, fmt.Sprintf("query parameter %q is not declared", name))
		}
	}
	if body != "" && !c.offSpecBody {
		var bp *apiParameter
		for i := range op.Parameters {
			if op.Parameters[i].In == "body" {
				bp = &op.Parameters[i]
			}
		}
		var v any
		switch err := json.Unmarshal([]byte(body), &v); {
		case bp == nil:
			problems = append(problems, "a body, which the spec does not declare")
		case err != nil:
			c.t.Fatalf("the test's own body is not JSON: %v", err)
		default:
			problems = append(problems, c.spec.checkSchema(v, bp.Schema, "request")...)
		}
	}
	c.offSpecBody = false
	code, answer := c.send(method, target, token, body)
	resp := op.Responses[strconv.Itoa(code)]
	if resp == nil {
		resp = op.Responses["default"]
	}
	if resp == nil {
		problems = append(problems, fmt.Sprintf("status %d is not declared and there is no default", code))
	} else {
		problems = append(problems, c.spec.checkSchema(answer, resp.Schema, "answer")...)
	}
	if code != http.StatusOK {
		problems = append(problems, c.checkError(code, answer)...)
	}
	for _, p := range problems {
		c.t.Errorf("%s %s (%s %s) → %d: %s", method, target, op.OperationID, tmpl, code, p)
	}
	return code, answer
}

// callOffSpec sends a request no operation serves (a wrong method, an
// unknown path): its answer is still a RestError.
func (c *specClient) callOffSpec(method, target string) int {
	c.t.Helper()
	code, answer := c.send(method, target, "", "")
	problems := c.spec.checkSchema(answer, &apiSchema{Ref: "#/definitions/v1RestError"}, "answer")
	for _, p := range append(problems, c.checkError(code, answer)...) {
		c.t.Errorf("%s %s → %d: %s", method, target, code, p)
	}
	return code
}

// checkError: an error's AIP-193 envelope carries the HTTP status and the
// same name as the top level.
func (c *specClient) checkError(code int, answer map[string]any) []string {
	env, _ := answer["error"].(map[string]any)
	if env == nil || env["code"] != float64(code) || env["status"] != answer["status"] || answer["status"] == "" {
		return []string{fmt.Sprintf("error envelope %v does not say HTTP %d and the status %v", answer["error"], code, answer["status"])}
	}
	return nil
}

func (c *specClient) send(method, target, token, body string) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.e.base+target, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.e.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s → %d: not a JSON object: %q", method, target, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// TestRESTAnswersMatchTheOpenAPIFile calls every operation of the served
// OpenAPI file on a live server, with records that have every kind of
// field set and unset, and the errors each kind of caller meets, and
// checks every answer against the file's schemas (unknown fields and
// undeclared nulls are errors).
func TestRESTAnswersMatchTheOpenAPIFile(t *testing.T) {
	t.Parallel()
	// Anonymous callers get 30 calls, so the caller budget's 429 comes soon;
	// the admin has room.
	e := start(t, withConfig(func(c *config.Config) {
		c.CallerRate, c.CallerBurst = 0.001, 30
		c.CallerLimits = map[string]caller.Budget{"admin": {Rate: 1e6, Burst: 1e6}}
	}))
	c := newSpecClient(t, e)
	field := func(m map[string]any, path ...string) any {
		var v any = m
		for _, p := range path {
			mm, _ := v.(map[string]any)
			v = mm[p]
		}
		return v
	}

	code, plain := c.call("POST", "/v1/keys", adminToken, `{"name":"plain","owner":"spec"}`)
	if code != 200 {
		t.Fatalf("CreateKey: %d %v", code, plain)
	}
	code, full := c.call("POST", "/v1/keys", adminToken, `{"name":"full","owner":"spec","scopes":["read"],
		"metadata":{"tier":"gold"},"expires_at":"2999-01-01T00:00:00Z","rate_limit":{"limit":"100","period":"60s","burst":"10"},
		"allowed_cidrs":["0.0.0.0/0","::/0"],"format":"FORMAT_CHECKSUM","request_id":"6f1d3c2a-9b8e-4d7f-a6c5-1e2d3f4a5b6c"}`)
	if code != 200 {
		t.Fatalf("CreateKey: %d %v", code, full)
	}
	id, secret := field(full, "key", "id").(string), full["secret"].(string)
	plainID := field(plain, "key", "id").(string)

	c.call("GET", "/v1/keys/"+id, adminToken, "")
	c.call("GET", "/v1/keys?owner=spec&page_size=1", adminToken, "")
	if code, v := c.call("POST", "/v1/keys:validate", "", `{"key":"`+secret+`","required_scopes":["read"],"cost":1,"client_ip":"192.0.2.1"}`); code != 200 || v["code"] != "CODE_VALID" {
		t.Errorf("Validate: %d %v", code, v)
	}
	if code, v := c.call("POST", "/v1/keys:validate", "", `{"key":"ks_not_a_key"}`); code != 200 || v["code"] != "CODE_MALFORMED" {
		t.Errorf("Validate: %d %v", code, v)
	}
	if code, v := c.call("PATCH", "/v1/keys/"+id+"?update_mask=scopes,metadata,expires_at,enabled&request_id=0c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f",
		adminToken, `{"scopes":["read","write"],"metadata":{},"enabled":false}`); code != 200 || field(v, "key", "expires_at") != nil {
		t.Errorf("UpdateKey: %d %v", code, v)
	}
	c.call("PATCH", "/v1/keys/"+id, adminToken, `{"enabled":true}`)
	if code, v := c.call("POST", "/v1/keys/"+plainID+":rotate", adminToken, `{"grace_period":"3600s","format":"FORMAT_CHECKSUM"}`); code != 200 || v["old_key"] == nil {
		t.Errorf("RotateKey: %d %v", code, v)
	}
	c.call("POST", "/v1/keys/"+id+":revoke", adminToken, `{}`)
	c.call("GET", "/v1/audit-events?key_id="+id+"&page_size=2", adminToken, "")
	c.call("GET", "/v1/audit-events?actor=admin-1", adminToken, "")

	// Keyspaces and credentials, with every field set and unset.
	code, ks := c.call("POST", "/v1/keyspaces", adminToken, `{"keyspace":{"name":"spec-space","prefix":"spec",
		"default_format":"FORMAT_CHECKSUM","default_rate_limit":{"limit":"10","period":"1s","burst":"10"},"default_expiry":"3600s","default_scopes":["read"]}}`)
	if code != 200 {
		t.Fatalf("CreateKeyspace: %d %v", code, ks)
	}
	ksID := field(ks, "keyspace", "id").(string)
	c.call("GET", "/v1/keyspaces/spec-space", adminToken, "")
	c.call("GET", "/v1/keyspaces?page_size=1", adminToken, "")
	if code, v := c.call("PATCH", "/v1/keyspaces/"+ksID+"?update_mask=default_scopes,default_expiry,default_rate_limit", adminToken, `{"default_scopes":[]}`); code != 200 {
		t.Errorf("UpdateKeyspace: %d %v", code, v)
	}
	code, cred := c.call("POST", "/v1/credentials", adminToken, `{"name":"spec-reader","permissions":["keys.read"],"keyspaces":["spec-space"],
		"expires_at":"2999-01-01T00:00:00Z","rate_limit":{"limit":"5","period":"1s"}}`)
	if code != 200 {
		t.Fatalf("CreateCredential: %d %v", code, cred)
	}
	c.call("GET", "/v1/credentials", adminToken, "")
	reader := cred["secret"].(string)
	if code, v := c.call("POST", "/v1/keys", reader, `{"name":"x","owner":"spec"}`); code != 403 {
		t.Errorf("CreateKey by a read-only credential: %d %v, want 403", code, v)
	}
	if code, v := c.call("POST", "/v1/credentials/"+field(cred, "credential", "id").(string)+":revoke", adminToken, `{}`); code != 200 {
		t.Errorf("RevokeCredential: %d %v", code, v)
	}

	// Credits, owners, charges and usage.
	code, ck := c.call("POST", "/v1/keys", adminToken, `{"name":"metered","owner":"spec-org","credits":{"remaining":"10",
		"refill":{"amount":"10","interval":"REFILL_INTERVAL_MONTHLY","day_of_month":1}}}`)
	if code != 200 {
		t.Fatalf("CreateKey with credits: %d %v", code, ck)
	}
	ckID, ckSecret := field(ck, "key", "id").(string), ck["secret"].(string)
	if code, v := c.call("POST", "/v1/keys/"+ckID+":addCredits", adminToken, `{"amount":"5","request_id":"0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"}`); code != 200 {
		t.Errorf("AddCredits: %d %v", code, v)
	}
	code, own := c.call("POST", "/v1/owners", adminToken, `{"owner":{"name":"spec-org","rate_limit":{"limit":"100","period":"1s"},"credits":{"remaining":"100",
		"refill":{"amount":"100","interval":"REFILL_INTERVAL_EVERY","every":"86400s"}}}}`)
	if code != 200 {
		t.Fatalf("CreateOwner: %d %v", code, own)
	}
	ownID := field(own, "owner", "id").(string)
	c.call("GET", "/v1/owners/"+ownID, adminToken, "")
	c.call("GET", "/v1/owners?page_size=1", adminToken, "")
	if code, v := c.call("PATCH", "/v1/owners/"+ownID+"?update_mask=rate_limit", adminToken, `{}`); code != 200 {
		t.Errorf("UpdateOwner: %d %v", code, v)
	}
	if code, v := c.call("POST", "/v1/owners/"+ownID+":addCredits", adminToken, `{"amount":"-5"}`); code != 200 {
		t.Errorf("AddCredits to an owner: %d %v", code, v)
	}
	for i := 0; i < 3; i++ {
		c.call("POST", "/v1/keys:validate", "", `{"key":"`+ckSecret+`","cost":4}`) // VALID, VALID, USAGE_EXCEEDED
	}
	if code, v := c.call("POST", "/v1/usage:report", adminToken, `{"key":"`+ckSecret+`","cost":"3","request_id":"1c9d6a52-7f0e-4b43-8f2b-5e6a7d8c9b0a"}`); code != 200 {
		t.Errorf("ReportUsage: %d %v", code, v)
	}
	c.call("GET", "/v1/usage?key_id="+ckID+"&granularity=GRANULARITY_MINUTE", adminToken, "")
	c.call("GET", "/v1/usage?owner=spec-org&group_by=USAGE_GROUP_KEY&page_size=1", adminToken, "")
	// The event stream's refusals are RestErrors like every other (its
	// lines are checked by client/cache_test.go).
	if code, v := c.call("GET", "/v1/key-events?heartbeat=1ms", adminToken, ""); code != 400 {
		t.Errorf("GET /v1/key-events?heartbeat=1ms: %d %v, want 400", code, v)
	}

	// Errors, each with the status its caller meets.
	for _, tc := range []struct {
		method, target, token, body string
		want                        int
		offSpecBody                 bool
	}{
		{"GET", "/v1/keys/not-a-uuid", adminToken, "", 400, false},
		{"GET", "/v1/keys/00000000-0000-4000-8000-000000000000", adminToken, "", 404, false},
		{"GET", "/v1/keys", "", "", 401, false},
		{"GET", "/v1/keys", "wrong-token-0123456789", "", 401, false},
		{"GET", "/v1/keyspaces/no-such-space", adminToken, "", 404, false},
		{"POST", "/v1/keyspaces", adminToken, `{"keyspace":{"name":"spec-space","prefix":"spec2"}}`, 409, false},
		{"POST", "/v1/keys", adminToken, `{"name":"x","owner":"spec","colour":"red"}`, 400, true},
		{"PATCH", "/v1/keys/" + id + "?update_mask=name", adminToken, `{"name":"after revoke"}`, 400, false},
		{"POST", "/v1/keys", adminToken, `{"name":"other","owner":"spec","request_id":"6f1d3c2a-9b8e-4d7f-a6c5-1e2d3f4a5b6c"}`, 409, false},
	} {
		c.offSpecBody = tc.offSpecBody
		if code, v := c.call(tc.method, tc.target, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.target, code, v, tc.want)
		}
	}
	if code := c.callOffSpec("DELETE", "/v1/keys"); code != 405 {
		t.Errorf("DELETE /v1/keys: %d, want 405", code)
	}
	if code := c.callOffSpec("GET", "/v1/no-such-route"); code != 404 {
		t.Errorf("GET /v1/no-such-route: %d, want 404", code)
	}
	// The anonymous caller's budget runs out: 429 with its RetryInfo.
	for i := 0; ; i++ {
		code, v := c.call("POST", "/v1/keys:validate", "", `{"key":"`+secret+`"}`)
		if code == 429 {
			break
		}
		if code != 200 || i > 40 {
			t.Fatalf("Validate %d: %d %v, want 200 until the budget runs out, then 429", i, code, v)
		}
	}

	var missing []string
	for _, ops := range c.spec.Paths {
		for _, op := range ops {
			if !c.seen[op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations the test never called: %v", missing)
	}
}
