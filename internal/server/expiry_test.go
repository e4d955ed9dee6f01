package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store"
)

// TestExpiredOrRotatedKeysCannotBeRevived: an expired key stays expired
// (updating its expires_at is FAILED_PRECONDITION, REST 400, over gRPC and
// REST, and it still answers EXPIRED); a rotated key's expiry may only
// move earlier: clearing it or moving it later is refused, moving it
// earlier works. Nothing refused writes an audit event.
func TestExpiredOrRotatedKeysCannotBeRevived(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	expiresAt := func(id string, ts *timestamppb.Timestamp) error {
		_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, ExpiresAt: ts}, UpdateMask: mask("expires_at")})
		return err
	}
	refused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("%s: %v, want FAILED_PRECONDITION", what, err)
		}
	}

	// Rotated with no grace: the old key is EXPIRED, and stays so.
	oldSecret, old := createKey(t, e, nil)
	if _, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: old.GetId(), GracePeriod: durationpb.New(0)}); err != nil {
		t.Fatal(err)
	}
	events := auditCount(t, e)
	code, body, _ := e.rest(t, "PATCH", "/v1/keys/"+old.GetId()+"?update_mask=expires_at", adminToken, `{}`)
	if code != 400 || body["code"] != float64(codes.FailedPrecondition) || !strings.Contains(fmt.Sprint(body["message"]), "reissue or rotate instead") {
		t.Fatalf("REST: clearing the expiry of an expired, rotated key: %d %v", code, body)
	}
	code, body, _ = e.rest(t, "PATCH", "/v1/keys/"+old.GetId()+"?update_mask=expires_at", adminToken, `{"expires_at":"2999-01-01T00:00:00Z"}`)
	if code != 400 || body["code"] != float64(codes.FailedPrecondition) {
		t.Fatalf("REST: extending an expired key: %d %v", code, body)
	}
	refused("gRPC: clearing the expiry of an expired key", expiresAt(old.GetId(), nil))
	refused("gRPC: extending an expired key", expiresAt(old.GetId(), timestamppb.New(time.Now().Add(time.Hour))))
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: oldSecret}); v.GetCode() != keyservicev1.Code_CODE_EXPIRED {
		t.Fatalf("the old key after the refused updates: %v, want EXPIRED", v.GetCode())
	}

	// An expired key that was never rotated stays expired too; its other
	// fields may still change.
	_, lapsed := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "lapsed", Owner: "acme", ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))})
	var id string
	if err := e.queryRow(t, "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = '"+lapsed.GetId()+"' RETURNING id::text", &id); err != nil {
		t.Fatal(err)
	}
	if n := auditCount(t, e); n != events+1 { // lapsed's creation
		t.Fatalf("refused updates wrote %d audit events", n-events-1)
	}
	refused("gRPC: reviving a lapsed key", expiresAt(lapsed.GetId(), timestamppb.New(time.Now().Add(time.Hour))))
	if n := auditCount(t, e); n != events+1 {
		t.Fatalf("a refused update wrote %d audit events", n-events-1)
	}
	if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: lapsed.GetId(), Name: "renamed"}, UpdateMask: mask("name")}); err != nil {
		t.Fatalf("renaming an expired key: %v", err)
	}

	// Rotated with a grace period: the expiry may move earlier, never later.
	_, graced := createKey(t, e, nil)
	rot, err := e.grpc.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: graced.GetId(), GracePeriod: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	end := rot.GetOldKey().GetExpiresAt().AsTime()
	refused("gRPC: clearing a rotated key's expiry", expiresAt(graced.GetId(), nil))
	refused("gRPC: extending a rotated key's grace", expiresAt(graced.GetId(), timestamppb.New(end.Add(24*time.Hour))))
	code, body, _ = e.rest(t, "PATCH", "/v1/keys/"+graced.GetId(), adminToken, fmt.Sprintf(`{"expires_at":%q}`, end.Add(time.Minute).Format(time.RFC3339Nano)))
	if code != 400 || body["code"] != float64(codes.FailedPrecondition) || !strings.Contains(fmt.Sprint(body["message"]), "earlier") {
		t.Fatalf("REST: extending a rotated key's grace: %d %v", code, body)
	}
	sooner := end.Add(-30 * time.Minute)
	if err := expiresAt(graced.GetId(), timestamppb.New(sooner)); err != nil {
		t.Fatalf("ending a rotated key's grace earlier: %v", err)
	}
	if g, err := e.grpc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: graced.GetId()}); err != nil || !g.GetKey().GetExpiresAt().AsTime().Equal(sooner.Truncate(time.Microsecond)) {
		t.Fatalf("after ending the grace earlier: %v %v", g.GetKey().GetExpiresAt(), err)
	}
}

// TestSubMicrosecondValuesMakeNoPhantomWrites: values are compared as they
// are stored (microseconds), so the same PATCH of expires_at
// ("….0000007Z") or of a rate_limit period ("60.0000001s") sent three
// times writes once: one audit event, one updated_at, one NOTIFY each; and
// a key created with such a time is unchanged by a PATCH with the same.
func TestSubMicrosecondValuesMakeNoPhantomWrites(t *testing.T) {
	t.Parallel()
	e := start(t)
	listen, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(context.Background())
	if _, err := listen.Exec(context.Background(), "LISTEN "+store.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second).Add(700 * time.Nanosecond)
	_, k := createKey(t, e, nil)
	path := "/v1/keys/" + k.GetId()
	var updatedAt []any
	for i := 0; i < 3; i++ {
		code, body, _ := e.rest(t, "PATCH", path+"?update_mask=expires_at", adminToken, fmt.Sprintf(`{"expires_at":%q}`, exp.Format(time.RFC3339Nano)))
		if code != 200 {
			t.Fatalf("PATCH %d: %d %v", i+1, code, body)
		}
		updatedAt = append(updatedAt, body["key"].(map[string]any)["updated_at"])
	}
	for i := 0; i < 3; i++ {
		if code, body, _ := e.rest(t, "PATCH", path+"?update_mask=rate_limit", adminToken, `{"rate_limit":{"limit":"5","period":"60.0000001s"}}`); code != 200 {
			t.Fatalf("PATCH of the limit %d: %d %v", i+1, code, body)
		}
	}
	if updatedAt[0] != updatedAt[2] {
		t.Fatalf("updated_at moved with the same PATCH: %v", updatedAt)
	}
	marker, err := e.grpc.UpdateKey(admin(context.Background()), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Name: "marker"}, UpdateMask: mask("name")})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	code, body, _ := e.rest(t, "GET", "/v1/audit-events?key_id="+k.GetId(), adminToken, "")
	if code != 200 {
		t.Fatalf("audit events: %d %v", code, body)
	}
	for _, ev := range body["events"].([]any) {
		m := ev.(map[string]any)
		var fields []string
		for _, c := range m["changes"].([]any) {
			fields = append(fields, c.(map[string]any)["field"].(string))
		}
		actions = append(actions, m["action"].(string)+"("+strings.Join(fields, ",")+")")
	}
	if strings.Join(actions, " ") != "update(name) update(rate_limit) update(expires_at) create(name,owner)" {
		t.Fatalf("audit events, newest first: %v", actions)
	}
	// NOTIFYs arrive in commit order: every update before the marker's.
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	updates := 0
	markerAt := strconv.FormatInt(marker.GetKey().GetUpdatedAt().AsTime().UnixMicro(), 10)
	for {
		n, err := listen.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("waiting for the marker's NOTIFY: %v", err)
		}
		if !strings.HasPrefix(n.Payload, string(apikey.EventUpdated)+":") {
			continue
		}
		updates++
		if strings.HasSuffix(n.Payload, ":"+markerAt) {
			break
		}
	}
	if updates != 3 {
		t.Fatalf("%d update notifications (marker included), want 3: one per real change", updates)
	}

	// Created with a sub-microsecond time, then PATCHed with the same.
	_, c := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", ExpiresAt: timestamppb.New(exp)})
	before := auditCount(t, e)
	if _, err := e.grpc.UpdateKey(admin(context.Background()), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: c.GetId(), ExpiresAt: timestamppb.New(exp)}, UpdateMask: mask("expires_at")}); err != nil {
		t.Fatal(err)
	}
	if n := auditCount(t, e); n != before {
		t.Fatalf("a PATCH with the expiry the key was created with wrote %d audit events", n-before)
	}
}
