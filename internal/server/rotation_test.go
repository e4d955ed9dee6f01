package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

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
