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

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

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
