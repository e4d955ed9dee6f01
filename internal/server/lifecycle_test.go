package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func createKey(t *testing.T, e *env, req *keyservicev1.CreateKeyRequest) (secret string, k *keyservicev1.Key) {
	t.Helper()
	if req == nil {
		req = &keyservicev1.CreateKeyRequest{Name: "life", Owner: "acme"}
	}
	created, err := e.grpc.CreateKey(admin(context.Background()), req)
	if err != nil {
		t.Fatal(err)
	}
	return created.GetSecret(), created.GetKey()
}

func validate(t *testing.T, e *env, req *keyservicev1.ValidateRequest) *keyservicev1.ValidateResponse {
	t.Helper()
	v, err := e.grpc.Validate(context.Background(), req)
	if err != nil {
		t.Fatalf("Validate: %v\n%s", err, lastLines(e.logs.String(), 5))
	}
	return v
}

func auditCount(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.queryRow(t, "SELECT count(*) FROM audit_events", &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpdateKeyChangesOnlyTheMaskedFields: UpdateKey over gRPC changes the
// fields in the mask, clears a masked field left unset, and is what
// Validate answers at once on the same replica, cached answer included.
func TestUpdateKeyChangesOnlyTheMaskedFields(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "before", Owner: "acme", Scopes: []string{"read"},
		Metadata: map[string]string{"tier": "free"}, ExpiresAt: timestamppb.New(exp)})
	if !k.GetEnabled() {
		t.Fatalf("a new key is not enabled: %v", k)
	}
	// Cached as VALID with the old scopes.
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); !v.GetValid() || strings.Join(v.GetKey().GetScopes(), ",") != "read" {
		t.Fatalf("before: %v", v)
	}
	up, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{
		Key:        &keyservicev1.Key{Id: k.GetId(), Name: "after", Scopes: []string{"read", "write"}, Owner: "ignored"},
		UpdateMask: mask("name", "scopes", "expires_at"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := up.GetKey()
	if got.GetName() != "after" || strings.Join(got.GetScopes(), ",") != "read,write" || got.GetOwner() != "acme" ||
		got.GetExpiresAt() != nil || got.GetMetadata()["tier"] != "free" || got.GetUpdatedAt() == nil {
		t.Fatalf("updated key: %v", got)
	}
	v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: []string{"write"}})
	if !v.GetValid() || v.GetKey().GetName() != "after" {
		t.Fatalf("right after the update, same replica: %v", v)
	}
	if g, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: k.GetId()}); err != nil || g.GetKey().GetName() != "after" {
		t.Fatalf("GetKey: %v %v", g, err)
	}
}

// TestUpdateKeyOverRESTTakesTheMaskFromTheQueryOrTheBody: PATCH
// /v1/keys/{key.id} with ?update_mask, or without it (the body's fields
// are the mask); a body field outside the updatable list is refused.
func TestUpdateKeyOverRESTTakesTheMaskFromTheQueryOrTheBody(t *testing.T) {
	t.Parallel()
	e := start(t)
	_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "rest", Owner: "acme", Scopes: []string{"read"}})
	path := "/v1/keys/" + k.GetId()
	code, body, _ := e.rest(t, "PATCH", path+"?update_mask=scopes", adminToken, `{"scopes":["a","b"],"name":"not-in-mask"}`)
	key, _ := body["key"].(map[string]any)
	if code != 200 || fmt.Sprint(key["scopes"]) != "[a b]" || key["name"] != "rest" {
		t.Fatalf("PATCH with update_mask: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "PATCH", path, adminToken, `{"name":"renamed","rate_limit":{"limit":"5","period":"60s"}}`)
	key, _ = body["key"].(map[string]any)
	if code != 200 || key["name"] != "renamed" || fmt.Sprint(key["rate_limit"]) != "map[burst:5 limit:5 period:60s]" {
		t.Fatalf("PATCH with the body as mask: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "PATCH", path, adminToken, `{"owner":"someone-else"}`)
	if code != 400 || !strings.Contains(fmt.Sprint(body["message"]), `"owner" cannot be updated`) {
		t.Fatalf("PATCH of owner: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "PATCH", path+"?update_mask=expiresAt", adminToken, `{}`)
	if code != 200 {
		t.Fatalf("PATCH with a camelCase mask path: %d %v", code, body)
	}
	if code, _, _ := e.rest(t, "PATCH", path, "", `{"name":"x"}`); code != 401 {
		t.Fatalf("PATCH without an admin token: %d", code)
	}
}

// TestDisabledKeyAnswersDisabledUntilEnabled: disabling a key answers
// CODE_DISABLED with the key, from memory (no lookup once cached), and
// enabling it makes it VALID again; the audit trail says disable, enable.
func TestDisabledKeyAnswersDisabledUntilEnabled(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, e, nil)
	set := func(on bool) {
		t.Helper()
		if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Enabled: on}, UpdateMask: mask("enabled")}); err != nil {
			t.Fatal(err)
		}
	}
	set(false)
	// DISABLED at once; the replica that made the change answers from the
	// new record, or (when another change reached memory meanwhile) from
	// one lookup, and from memory after that.
	var lookups float64
	for i := 0; i < 4; i++ {
		if i == 1 {
			lookups = metricSum(t, e, "keyservice_lookups_total")
		}
		v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret})
		if v.GetValid() || v.GetCode() != keyservicev1.Code_CODE_DISABLED || v.GetKey().GetId() != k.GetId() || v.GetKey().GetEnabled() {
			t.Fatalf("disabled key: %v", v)
		}
	}
	if after := metricSum(t, e, "keyservice_lookups_total"); after != lookups {
		t.Fatalf("DISABLED answers after the first made %v lookups, want 0 (from memory)", after-lookups)
	}
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret))
	if code != 200 || body["code"] != "CODE_DISABLED" {
		t.Fatalf("REST, disabled: %d %v", code, body)
	}
	set(true)
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); !v.GetValid() {
		t.Fatalf("enabled again: %v", v)
	}
	evs, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: k.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs.GetEvents() {
		actions = append(actions, ev.GetAction())
	}
	if strings.Join(actions, ",") != "enable,disable,create" {
		t.Fatalf("audit actions, newest first: %v", actions)
	}
}

// TestRequiredScopesMustAllBeGranted: every required scope must be among
// the key's scopes, exactly; otherwise INSUFFICIENT_SCOPE with the key.
func TestRequiredScopesMustAllBeGranted(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "s", Owner: "acme", Scopes: []string{"orders:read", "orders:write"}})
	for _, tc := range []struct {
		required []string
		want     keyservicev1.Code
	}{
		{nil, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read"}, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read", "orders:write"}, keyservicev1.Code_CODE_VALID},
		{[]string{"orders:read", "orders:delete"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE},
		{[]string{"Orders:Read"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE}, // exact match
		{[]string{"orders:*"}, keyservicev1.Code_CODE_INSUFFICIENT_SCOPE},    // no wildcards
	} {
		v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: tc.required})
		if v.GetCode() != tc.want || v.GetValid() != (tc.want == keyservicev1.Code_CODE_VALID) || v.GetKey() == nil {
			t.Errorf("required %v: %v, want %v with the key", tc.required, v.GetCode(), tc.want)
		}
	}
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q,"required_scopes":["admin"]}`, secret))
	if code != 200 || body["code"] != "CODE_INSUFFICIENT_SCOPE" || body["key"] == nil {
		t.Fatalf("REST: %d %v", code, body)
	}
	if n := metricValue(t, e, `keyservice_validate_call_refusals_total{code="INSUFFICIENT_SCOPE"}`); n != 4 {
		t.Fatalf("INSUFFICIENT_SCOPE answers counted: %v, want 4", n)
	}
}

// TestAllowedCIDRsPinAKeyToAddresses: a key with allowed_cidrs is VALID
// only from inside one of them: the believed client_ip (a caller with a
// token), else the caller's own address; a client_ip from an anonymous
// caller is not believed.
func TestAllowedCIDRsPinAKeyToAddresses(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerTokens = map[string]string{"gw": tokenA} }))
	ctx := context.Background()
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8", "2001:db8::/32"}})
	if strings.Join(k.GetAllowedCidrs(), ",") != "10.0.0.0/8,2001:db8::/32" {
		t.Fatalf("stored allowed_cidrs: %v", k.GetAllowedCidrs())
	}
	check := func(name, clientIP string, want keyservicev1.Code) {
		t.Helper()
		v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: clientIP})
		if err != nil || v.GetCode() != want {
			t.Errorf("%s (client_ip %q): %v %v, want %v", name, clientIP, v.GetCode(), err, want)
		}
	}
	check("inside IPv4", "10.1.2.3", keyservicev1.Code_CODE_VALID)
	check("inside IPv6", "2001:db8::7", keyservicev1.Code_CODE_VALID)
	check("IPv4-mapped IPv6", "::ffff:10.9.9.9", keyservicev1.Code_CODE_VALID)
	check("outside", "192.0.2.1", keyservicev1.Code_CODE_FORBIDDEN)
	if v, _ := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: "192.0.2.1"}); v.GetKey() != nil {
		t.Fatalf("a FORBIDDEN answer shows the key's record: %v", v.GetKey())
	}
	check("no client_ip: the caller's address 127.0.0.1", "", keyservicev1.Code_CODE_FORBIDDEN)
	// Without the caller token the caller is its address, which may not
	// name end clients: 127.0.0.1 is checked, not the claimed 10.1.2.3.
	if v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: secret, ClientIp: "10.1.2.3"}); err == nil || status.Code(err) != codes.Unauthenticated {
		// Caller tokens are configured: an anonymous call is refused outright.
		t.Fatalf("anonymous call with caller tokens configured: %v %v", v, err)
	}
	// Pinned to loopback, the caller's own address passes.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), AllowedCidrs: []string{"127.0.0.0/8"}}, UpdateMask: mask("allowed_cidrs")}); err != nil {
		t.Fatal(err)
	}
	check("loopback caller, no client_ip", "", keyservicev1.Code_CODE_VALID)
	check("client_ip outside", "10.1.2.3", keyservicev1.Code_CODE_FORBIDDEN)
	// A pinned key's record is not shown outside its addresses, whatever
	// the answer.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId()}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	if v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret, ClientIp: "192.0.2.1"}); err != nil || v.GetCode() != keyservicev1.Code_CODE_DISABLED || v.GetKey() != nil {
		t.Fatalf("disabled pinned key from outside: %v %v, want DISABLED without the record", v, err)
	}
	if v, err := e.grpc.Validate(asCaller(ctx, tokenA), &keyservicev1.ValidateRequest{Key: secret}); err != nil || v.GetCode() != keyservicev1.Code_CODE_DISABLED || v.GetKey() == nil {
		t.Fatalf("disabled pinned key from inside: %v %v, want DISABLED with the record", v, err)
	}
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Enabled: true}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	// Cleared: any address.
	if _, err := e.grpc.UpdateKey(admin(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId()}, UpdateMask: mask("allowed_cidrs")}); err != nil {
		t.Fatal(err)
	}
	check("unpinned", "192.0.2.1", keyservicev1.Code_CODE_VALID)
}

// TestAllowedCIDRsIgnoreClientIPFromAnUntrustedCaller: an anonymous caller
// cannot claim an address inside the allowed ones.
func TestAllowedCIDRsIgnoreClientIPFromAnUntrustedCaller(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, ClientIp: "10.1.2.3"}); v.GetCode() != keyservicev1.Code_CODE_FORBIDDEN {
		t.Fatalf("anonymous caller claiming 10.1.2.3: %v, want FORBIDDEN (its own address 127.0.0.1 is checked)", v.GetCode())
	}
	// The REST gateway's client is 127.0.0.1 too, and X-Forwarded-For from
	// an untrusted client is not believed.
	code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q,"client_ip":"10.1.2.3"}`, secret))
	if code != 200 || body["code"] != "CODE_FORBIDDEN" {
		t.Fatalf("REST: %d %v", code, body)
	}
}

// TestRotateKeyKeepsBothValidDuringTheGracePeriod: the new key copies the
// old one and links to it; both are VALID during the grace period; with
// no grace the old key is EXPIRED at once; a rotated or revoked key
// cannot be rotated.
func TestRotateKeyKeepsBothValidDuringTheGracePeriod(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	oldSecret, old := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "svc", Owner: "acme", Scopes: []string{"read"},
		Metadata: map[string]string{"env": "prod"}, AllowedCidrs: []string{"127.0.0.0/8"},
		RateLimit: &keyservicev1.RateLimit{Limit: 50, Period: durationpb.New(time.Minute), Burst: 5}})
	validate(t, e, &keyservicev1.ValidateRequest{Key: oldSecret}) // cached
	rot, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: old.GetId(), GracePeriod: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	nk, ok := rot.GetKey(), rot.GetOldKey()
	if rot.GetSecret() == "" || rot.GetSecret() == oldSecret || nk.GetId() == old.GetId() || nk.GetRotatedFrom() != old.GetId() ||
		nk.GetName() != "svc" || nk.GetOwner() != "acme" || strings.Join(nk.GetScopes(), ",") != "read" || nk.GetMetadata()["env"] != "prod" ||
		strings.Join(nk.GetAllowedCidrs(), ",") != "127.0.0.0/8" || nk.GetRateLimit().GetLimit() != 50 || nk.GetRateLimit().GetBurst() != 5 {
		t.Fatalf("new key: %v", nk)
	}
	if ok.GetRotatedTo() != nk.GetId() || ok.GetExpiresAt() == nil {
		t.Fatalf("old key: %v", ok)
	}
	if left := time.Until(ok.GetExpiresAt().AsTime()); left < 59*time.Minute || left > 61*time.Minute {
		t.Fatalf("old key expires in %v, want about 1h", left)
	}
	for name, s := range map[string]string{"old": oldSecret, "new": rot.GetSecret()} {
		if v := validate(t, e, &keyservicev1.ValidateRequest{Key: s}); !v.GetValid() {
			t.Fatalf("%s key during the grace period: %v", name, v)
		}
	}
	if _, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: old.GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rotating a rotated key: %v, want FAILED_PRECONDITION", err)
	}
	// No grace: the old key is EXPIRED at once (REST this time).
	code, body, _ := e.rest(t, "POST", "/v1/keys/"+nk.GetId()+":rotate", adminToken, `{"grace_period":"0s"}`)
	if code != 200 || body["secret"] == nil {
		t.Fatalf("REST rotate: %d %v", code, body)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: rot.GetSecret()}); v.GetCode() != keyservicev1.Code_CODE_EXPIRED {
		t.Fatalf("rotated with no grace: %v, want EXPIRED", v.GetCode())
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: body["secret"].(string)}); !v.GetValid() {
		t.Fatalf("newest key: %v", v)
	}
	// The grace period never extends an expiry.
	soon := time.Now().Add(10 * time.Minute)
	_, short := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "short", Owner: "acme", ExpiresAt: timestamppb.New(soon)})
	r2, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: short.GetId(), GracePeriod: durationpb.New(24 * time.Hour)})
	if err != nil || !r2.GetOldKey().GetExpiresAt().AsTime().Equal(short.GetExpiresAt().AsTime()) {
		t.Fatalf("grace beyond the expiry: %v %v", r2.GetOldKey(), err)
	}
	_, revoked := createKey(t, e, nil)
	if _, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: revoked.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: revoked.GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rotating a revoked key: %v", err)
	}
	// An expired key's successor would be born expired.
	_, expired := createKey(t, e, nil)
	var gone string
	if err := e.queryRow(t, "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = '"+expired.GetId()+"' RETURNING id::text", &gone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: expired.GetId()}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(status.Convert(err).Message(), "expired") {
		t.Fatalf("rotating an expired key: %v", err)
	}
	_, off := createKey(t, e, nil)
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: off.GetId()}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	if r, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: off.GetId()}); err != nil || !r.GetKey().GetEnabled() || r.GetOldKey().GetEnabled() {
		t.Fatalf("rotating a disabled key (a leak: disable, then rotate) gives an enabled successor: %v %v", r, err)
	}
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: revoked.GetId(), Name: "x"}, UpdateMask: mask("name")}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("updating a revoked key: %v", err)
	}
}

// TestAuditTrailNamesTheActorAndTheChanges: each admin write records one
// event with the admin token's name, the request id and the changed
// fields (never a secret or hash); the list pages newest first and
// filters by key and actor.
func TestAuditTrailNamesTheActorAndTheChanges(t *testing.T) {
	t.Parallel()
	const aliceToken, bobToken = "alice-admin-token-0123456789", "second-admin-token-0123456789"
	e := start(t, withConfig(func(c *config.Config) {
		c.AdminTokens, c.AdminNames = []string{aliceToken, bobToken}, []string{"alice", "admin-2"}
	}))
	as := func(tok string) context.Context { return asCaller(context.Background(), tok) }
	created, err := e.grpc.CreateKey(as(aliceToken), &keyservicev1.CreateKeyRequest{Name: "audited", Owner: "acme", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetKey().GetId()
	if _, err := e.grpc.UpdateKey(as(bobToken), &keyservicev1.UpdateKeyRequest{
		Key: &keyservicev1.Key{Id: id, Scopes: []string{"read", "write"}, Name: "audited"}, UpdateMask: mask("scopes", "name")}); err != nil {
		t.Fatal(err)
	}
	rot, err := e.grpc.RotateKey(as(aliceToken), &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.RevokeKey(as(bobToken), &keyservicev1.RevokeKeyRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.RevokeKey(as(bobToken), &keyservicev1.RevokeKeyRequest{Id: id}); err != nil { // idempotent: no second event
		t.Fatal(err)
	}
	list, err := e.grpc.ListAuditEvents(as(aliceToken), &keyservicev1.ListAuditEventsRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range list.GetEvents() {
		got = append(got, ev.GetAction()+"/"+ev.GetActor())
		if ev.GetKeyId() != id || ev.GetRequestId() == "" || ev.GetTime() == nil || ev.GetId() == "" {
			t.Errorf("event %v", ev)
		}
	}
	if strings.Join(got, ",") != "revoke/admin-2,rotate/alice,update/admin-2,create/alice" {
		t.Fatalf("events of the key, newest first: %v", got)
	}
	upd := list.GetEvents()[2]
	if len(upd.GetChanges()) != 1 || upd.GetChanges()[0].GetField() != "scopes" ||
		fmt.Sprint(upd.GetChanges()[0].GetOldValue().AsInterface()) != "[read]" || fmt.Sprint(upd.GetChanges()[0].GetNewValue().AsInterface()) != "[read write]" {
		t.Fatalf("update event's changes (name did not change): %v", upd.GetChanges())
	}
	rotEv := list.GetEvents()[1]
	var fields []string
	for _, c := range rotEv.GetChanges() {
		fields = append(fields, c.GetField())
		if c.GetField() == "rotated_to" && c.GetNewValue().GetStringValue() != rot.GetKey().GetId() {
			t.Errorf("rotated_to: %v", c)
		}
	}
	if strings.Join(fields, ",") != "expires_at,rotated_to" {
		t.Fatalf("rotate event's fields: %v", fields)
	}
	// Never a secret or a hash in the trail.
	var raw string
	if err := e.queryRow(t, "SELECT string_agg(changes::text, ' ') FROM audit_events", &raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, created.GetSecret()) || strings.Contains(raw, rot.GetSecret()) || strings.Contains(raw, "key_hash") {
		t.Fatalf("the audit trail holds a secret or hash: %s", raw)
	}
	// The new key's creation is in the trail too, by the rotating admin.
	byNew, err := e.grpc.ListAuditEvents(as(aliceToken), &keyservicev1.ListAuditEventsRequest{KeyId: rot.GetKey().GetId()})
	if err != nil || len(byNew.GetEvents()) != 1 || byNew.GetEvents()[0].GetAction() != "create" || byNew.GetEvents()[0].GetActor() != "alice" {
		t.Fatalf("events of the new key: %v %v", byNew, err)
	}
	// By actor, paged one at a time over REST.
	var actions []string
	token := ""
	for i := 0; i < 5; i++ {
		code, body, _ := e.rest(t, "GET", "/v1/audit-events?actor=alice&page_size=1&page_token="+token, aliceToken, "")
		if code != 200 {
			t.Fatalf("REST list: %d %v", code, body)
		}
		for _, ev := range body["events"].([]any) {
			actions = append(actions, ev.(map[string]any)["action"].(string))
		}
		token, _ = body["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if strings.Join(actions, ",") != "create,rotate,create" {
		t.Fatalf("alice's events, newest first: %v", actions)
	}
	if _, err := e.grpc.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListAuditEvents without a token: %v", err)
	}
}

// TestLifecycleBadInputIsRefusedAndWritesNothing: each bad request is
// INVALID_ARGUMENT (or NOT_FOUND) naming the problem, changes no key and
// records no audit event.
func TestLifecycleBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: []string{"read"}})
	id := k.GetId()
	before := auditCount(t, e)
	unknown := "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"
	for name, tc := range map[string]struct {
		call func() error
		code codes.Code
		msg  string
	}{
		"empty mask": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Name: "x"}})
			return err
		}, codes.InvalidArgument, "update_mask: is required"},
		"unknown path": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id}, UpdateMask: mask("colour")})
			return err
		}, codes.InvalidArgument, `"colour" cannot be updated`},
		"immutable path": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Name: "m", Hint: "x"}, UpdateMask: mask("name", "hint")})
			return err
		}, codes.InvalidArgument, `"hint" cannot be updated`},
		"sub-path without the field": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id}, UpdateMask: mask("rate_limit.burst")})
			return err
		}, codes.InvalidArgument, "needs key.rate_limit"},
		"unknown sub-path": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id}, UpdateMask: mask("rate_limit.bogus")})
			return err
		}, codes.InvalidArgument, `"rate_limit.bogus" cannot be updated`},
		"bad CIDR": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, AllowedCidrs: []string{"10.0.0.0/8", "10.0.0/33"}}, UpdateMask: mask("allowed_cidrs")})
			return err
		}, codes.InvalidArgument, "allowed_cidrs[1]"},
		"CIDR with host bits": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, AllowedCidrs: []string{"10.1.2.3/8"}}, UpdateMask: mask("allowed_cidrs")})
			return err
		}, codes.InvalidArgument, "did you mean 10.0.0.0/8"},
		"bad CIDR at creation": {func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", AllowedCidrs: []string{"10.1.2.3"}})
			return err
		}, codes.InvalidArgument, "is an address, not a CIDR"},
		"empty name": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id}, UpdateMask: mask("name")})
			return err
		}, codes.InvalidArgument, "key.name: is required"},
		"past expiry": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, ExpiresAt: timestamppb.New(time.Now().Add(-time.Hour))}, UpdateMask: mask("expires_at")})
			return err
		}, codes.InvalidArgument, "must be in the future"},
		"grace over 30 days": {func() error {
			_, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(31 * 24 * time.Hour)})
			return err
		}, codes.InvalidArgument, "grace_period"},
		"negative grace": {func() error {
			_, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument, "grace_period"},
		"update of an unknown id": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: unknown, Name: "x"}, UpdateMask: mask("name")})
			return err
		}, codes.NotFound, "not found"},
		"rotation of an unknown id": {func() error {
			_, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: unknown})
			return err
		}, codes.NotFound, "not found"},
		"malformed id": {func() error {
			_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: "nope"}, UpdateMask: mask("name")})
			return err
		}, codes.InvalidArgument, "key.id"},
		"empty required scope": {func() error {
			_, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: []string{"read", ""}})
			return err
		}, codes.InvalidArgument, "required_scopes[1]"},
		"65 required scopes": {func() error {
			rs := make([]string, 65)
			for i := range rs {
				rs[i] = fmt.Sprintf("s%d", i)
			}
			_, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: rs})
			return err
		}, codes.InvalidArgument, "at most 64"},
		"bad audit key_id": {func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: "nope"})
			return err
		}, codes.InvalidArgument, "key_id"},
	} {
		err := tc.call()
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", name, err, tc.code, tc.msg)
		}
	}
	if n := auditCount(t, e); n != before {
		t.Fatalf("bad requests recorded %d audit events", n-before)
	}
	g, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: id})
	if err != nil || g.GetKey().GetName() != "n" || len(g.GetKey().GetAllowedCidrs()) != 0 || g.GetKey().GetRotatedTo() != "" || g.GetKey().GetUpdatedAt() != nil {
		t.Fatalf("the key changed: %v %v", g, err)
	}
	// 0.0.0.0/0 mixed with others is allowed (and documented: it admits
	// every IPv4 address).
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, AllowedCidrs: []string{"0.0.0.0/0", "2001:db8::/32"}}, UpdateMask: mask("allowed_cidrs")}); err != nil {
		t.Fatalf("0.0.0.0/0 with another CIDR: %v", err)
	}
}

// TestAnswersFollowTheDocumentedPrecedence: a key that fails several
// checks gets the first in the order docs/api.md gives, and a key refused before
// its limit spends nothing from its budget.
func TestAnswersFollowTheDocumentedPrecedence(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "p", Owner: "o", Scopes: []string{"read"}, AllowedCidrs: []string{"10.0.0.0/8"},
		RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
	wrong := &keyservicev1.ValidateRequest{Key: secret, RequiredScopes: []string{"write"}}
	if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_FORBIDDEN {
		t.Fatalf("outside the CIDRs and missing a scope: %v, want FORBIDDEN", v.GetCode())
	}
	update := func(k *keyservicev1.Key, paths ...string) {
		t.Helper()
		if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: k, UpdateMask: mask(paths...)}); err != nil {
			t.Fatal(err)
		}
	}
	update(&keyservicev1.Key{Id: k.GetId(), Enabled: false}, "enabled")
	if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_DISABLED {
		t.Fatalf("disabled too: %v, want DISABLED", v.GetCode())
	}
	update(&keyservicev1.Key{Id: k.GetId(), Enabled: true, AllowedCidrs: []string{"127.0.0.0/8"}}, "enabled", "allowed_cidrs")
	for i := 0; i < 3; i++ {
		if v := validate(t, e, wrong); v.GetCode() != keyservicev1.Code_CODE_INSUFFICIENT_SCOPE {
			t.Fatalf("missing a scope: %v, want INSUFFICIENT_SCOPE", v.GetCode())
		}
	}
	// Nothing was spent: the one call of the budget is still there.
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); !v.GetValid() {
		t.Fatalf("first allowed call after refusals: %v", v)
	}
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); v.GetCode() != keyservicev1.Code_CODE_RATE_LIMITED {
		t.Fatalf("second call: %v, want RATE_LIMITED", v.GetCode())
	}
	for code, want := range map[string]float64{"FORBIDDEN": 1, "INSUFFICIENT_SCOPE": 3, "RATE_LIMITED": 1} {
		if n := metricValue(t, e, `keyservice_validate_call_refusals_total{code="`+code+`"}`); n != want {
			t.Errorf("%s answers counted: %v, want %v", code, n, want)
		}
	}
	// A changed limit applies from the next call (what was spent is kept,
	// refilled at the new rate).
	update(&keyservicev1.Key{Id: k.GetId(), RateLimit: &keyservicev1.RateLimit{Limit: 100, Period: durationpb.New(time.Second)}}, "rate_limit")
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret, Cost: proto.Int32(0)}); v.GetRateLimit().GetLimit() != 100 {
		t.Fatalf("after raising the limit: %v", v)
	}
}

// TestLifecycleChangesReachTheOtherReplica: update, disable, a lowered
// limit and rotation made on replica A are answered on replica B, whose
// cached answers they replace (B learns them by NOTIFY); the successor
// spends the budget its predecessor spent.
func TestLifecycleChangesReachTheOtherReplica(t *testing.T) {
	t.Parallel()
	a := start(t)
	b := startOn(t, a.dbURL)
	b.waitReady(t)
	ctx := admin(context.Background())
	secret, k := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: []string{"read"}})
	req := &keyservicev1.ValidateRequest{Key: secret}
	waitFor(t, func() bool { v, err := b.grpc.Validate(context.Background(), req); return err == nil && v.GetValid() }) // cached on B
	step := func(name string, change func(), done func(*keyservicev1.ValidateResponse) bool, r *keyservicev1.ValidateRequest) {
		t.Helper()
		change()
		waitFor(t, func() bool {
			v, err := b.grpc.Validate(context.Background(), r)
			return err == nil && done(v)
		})
	}
	update := func(k *keyservicev1.Key, paths ...string) func() {
		return func() {
			if _, err := a.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: k, UpdateMask: mask(paths...)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	step("scopes", update(&keyservicev1.Key{Id: k.GetId(), Scopes: []string{"read", "write"}}, "scopes"),
		func(v *keyservicev1.ValidateResponse) bool { return v.GetValid() },
		&keyservicev1.ValidateRequest{Key: secret, RequiredScopes: []string{"write"}})
	step("disable", update(&keyservicev1.Key{Id: k.GetId(), Enabled: false}, "enabled"),
		func(v *keyservicev1.ValidateResponse) bool { return v.GetCode() == keyservicev1.Code_CODE_DISABLED }, req)
	step("enable", update(&keyservicev1.Key{Id: k.GetId(), Enabled: true}, "enabled"),
		func(v *keyservicev1.ValidateResponse) bool { return v.GetValid() }, req)
	step("lowered limit", update(&keyservicev1.Key{Id: k.GetId(), RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}}, "rate_limit"),
		func(v *keyservicev1.ValidateResponse) bool { return v.GetCode() == keyservicev1.Code_CODE_RATE_LIMITED }, req)
	var newSecret string
	step("rotate", func() {
		r, err := a.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: k.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		newSecret = r.GetSecret()
	}, func(v *keyservicev1.ValidateResponse) bool { return v.GetCode() == keyservicev1.Code_CODE_EXPIRED }, req)
	// The successor is known on B, and spends the budget its predecessor
	// spent there: one budget for a rotation chain.
	if v := validate(t, b, &keyservicev1.ValidateRequest{Key: newSecret}); v.GetCode() != keyservicev1.Code_CODE_RATE_LIMITED || v.GetKey().GetRotatedFrom() != k.GetId() {
		t.Fatalf("the rotated key on B: %v, want RATE_LIMITED (its chain's budget is spent)", v)
	}
	// B holds the old key's EXPIRED answer; a revocation replaces it.
	step("revoke an expired key", func() {
		if _, err := a.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: k.GetId()}); err != nil {
			t.Fatal(err)
		}
	}, func(v *keyservicev1.ValidateResponse) bool { return v.GetCode() == keyservicev1.Code_CODE_REVOKED }, req)
}

// TestGatewaysAnswer403ForMissingScopesAndAddresses: forward-auth reads
// X-Required-Scopes, Envoy the required_scopes context extension; both
// answer 403 when a scope is missing or the end client is outside the
// key's allowed addresses.
func TestGatewaysAnswer403ForMissingScopesAndAddresses(t *testing.T) {
	t.Parallel()
	e := start(t)
	secret, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "gw", Owner: "acme", Scopes: []string{"orders:read"}})
	pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"10.0.0.0/8"}})
	url := e.base + "/v1/auth"
	bearer := func(s string) map[string]string { return map[string]string{"Authorization": "Bearer " + s} }
	with := func(h map[string]string, k, v string) map[string]string { h[k] = v; return h }
	if r := get(t, url, with(bearer(secret), "X-Required-Scopes", "orders:read")); r.StatusCode != 200 {
		t.Fatalf("forward-auth, scope granted: %d", r.StatusCode)
	}
	r := get(t, url, with(bearer(secret), "X-Required-Scopes", "orders:read, orders:write"))
	if r.StatusCode != 403 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("forward-auth, scope missing: %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, url, bearer(pinned)); r.StatusCode != 403 {
		t.Fatalf("forward-auth, end client outside the allowed addresses: %d", r.StatusCode)
	}
	// A header sent twice (the client's value and the gateway's) adds
	// requirements; the client's value cannot replace the gateway's.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Add("X-Required-Scopes", "orders:read")
	req.Header.Add("X-Required-Scopes", "orders:write")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("forward-auth, scopes in two headers, one missing: %d", resp.StatusCode)
	}

	for _, mode := range envoyModes {
		check := func(key, from, scopes string) int32 {
			t.Helper()
			return envoyStatus(envoyCheck(t, e, mode, envoyRequest{source: from, headers: []string{"authorization", "Bearer " + key},
				ext: map[string]string{"required_scopes": scopes}}))
		}
		if c := check(secret, "198.51.100.7", "orders:read"); c != 200 {
			t.Fatalf("Envoy (%s), scope granted: %d", mode, c)
		}
		if c := check(secret, "198.51.100.7", "orders:write"); c != 403 {
			t.Fatalf("Envoy (%s), scope missing: %d", mode, c)
		}
		// Envoy's peer (127.0.0.1) is not a trusted proxy here, so the source
		// address it names is not believed: the pinned key is refused.
		if c := check(pinned, "10.1.2.3", ""); c != 403 {
			t.Fatalf("Envoy (%s), pinned key from an unbelieved source: %d", mode, c)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestAllowedCIDRsFailClosedBehindAProxyWithNoUsableChain: a caller with a
// token, behind a trusted proxy whose forwarded chain names no end client,
// has no end client address: a pinned key is refused even though the
// proxy's own address is inside the allowed range.
func TestAllowedCIDRsFailClosedBehindAProxyWithNoUsableChain(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.CallerTokens = map[string]string{"gw": tokenA}
	}))
	pinned, _ := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "pinned", Owner: "acme", AllowedCidrs: []string{"127.0.0.0/8"}})
	do := func(xff string) int {
		req, _ := http.NewRequest("GET", e.base+"/v1/auth", nil)
		req.Header.Set("Authorization", "Bearer "+pinned)
		req.Header.Set("X-Keyservice-Caller-Token", tokenA)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := do("127.0.0.9"); c != 200 {
		t.Fatalf("end client 127.0.0.9 named by the proxy: %d, want 200", c)
	}
	if c := do("not-an-address"); c != 403 {
		t.Fatalf("unusable forwarded chain: %d, want 403 (no end client address)", c)
	}
	if c := do(""); c != 403 {
		t.Fatalf("no forwarded chain at all: %d, want 403 (the gateway's own address is not the end client's)", c)
	}
}
