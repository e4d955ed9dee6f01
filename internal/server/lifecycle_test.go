package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

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
