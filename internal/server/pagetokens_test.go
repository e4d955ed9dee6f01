package server_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestPageTokensAreBoundToTheirListAndFilters: a page token works only on
// the list and with the filters it was issued for. A ListKeys token on
// ListAuditEvents (and the reverse), or with another owner, actor or
// key_id, is INVALID_ARGUMENT naming page_token over gRPC and 400 over
// REST; with the same filters it goes on to the next page.
func TestPageTokensAreBoundToTheirListAndFilters(t *testing.T) {
	t.Parallel()
	const aliceToken = "alice-admin-token-0123456789"
	e := start(t, withConfig(func(c *config.Config) {
		c.AdminTokens, c.AdminNames = []string{adminToken, aliceToken}, []string{"admin-1", "alice"}
	}))
	ctx := asCaller(context.Background(), aliceToken)
	var ids []string
	for i := 0; i < 3; i++ {
		created, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "paged", Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.GetKey().GetId())
		if _, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "paged", Owner: "other"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ { // two events on the first key
		if _, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: ids[0], Name: fmt.Sprint("renamed-", i)}, UpdateMask: mask("name")}); err != nil {
			t.Fatal(err)
		}
	}
	keysPage, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageSize: 1})
	if err != nil || keysPage.GetNextPageToken() == "" {
		t.Fatalf("ListKeys: %v %v", keysPage, err)
	}
	auditPage, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "alice", KeyId: ids[0], PageSize: 1})
	if err != nil || auditPage.GetNextPageToken() == "" {
		t.Fatalf("ListAuditEvents: %v %v", auditPage, err)
	}
	allKeys, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 1})
	if err != nil || allKeys.GetNextPageToken() == "" {
		t.Fatalf("ListKeys of every owner: %v %v", allKeys, err)
	}
	kt, at, all := keysPage.GetNextPageToken(), auditPage.GetNextPageToken(), allKeys.GetNextPageToken()

	// With the filters they were issued for, the tokens go on.
	if next, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageSize: 1, PageToken: kt}); err != nil || len(next.GetKeys()) != 1 || next.GetKeys()[0].GetId() != ids[1] {
		t.Fatalf("ListKeys, next page: %v %v", next, err)
	}
	if next, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "alice", KeyId: ids[0], PageSize: 1, PageToken: at}); err != nil || len(next.GetEvents()) != 1 {
		t.Fatalf("ListAuditEvents, next page: %v %v", next, err)
	}

	grpcRefusals := map[string]func() error{
		"a ListKeys token on ListAuditEvents": func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "alice", KeyId: ids[0], PageToken: kt})
			return err
		},
		"a ListAuditEvents token on ListKeys": func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: at})
			return err
		},
		"a ListKeys token with another owner": func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "other", PageToken: kt})
			return err
		},
		"a ListKeys token without its owner": func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageToken: kt})
			return err
		},
		"a ListKeys token of every owner with an owner": func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: all})
			return err
		},
		"a ListAuditEvents token with another actor": func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "admin-1", KeyId: ids[0], PageToken: at})
			return err
		},
		"a ListAuditEvents token without its actor": func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: ids[0], PageToken: at})
			return err
		},
		"a ListAuditEvents token with another key_id": func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "alice", KeyId: ids[1], PageToken: at})
			return err
		},
		"a ListAuditEvents token without its key_id": func() error {
			_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: "alice", PageToken: at})
			return err
		},
	}
	for name, call := range grpcRefusals {
		err := call()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_token") {
			t.Errorf("gRPC, %s: %v, want INVALID_ARGUMENT naming page_token", name, err)
		}
	}

	q := url.QueryEscape
	for name, path := range map[string]string{
		"a ListKeys token on ListAuditEvents":         "/v1/audit-events?actor=alice&key_id=" + ids[0] + "&page_token=" + q(kt),
		"a ListAuditEvents token on ListKeys":         "/v1/keys?owner=acme&page_token=" + q(at),
		"a ListKeys token with another owner":         "/v1/keys?owner=other&page_token=" + q(kt),
		"a ListAuditEvents token with another actor":  "/v1/audit-events?actor=admin-1&key_id=" + ids[0] + "&page_token=" + q(at),
		"a ListAuditEvents token with another key_id": "/v1/audit-events?actor=alice&key_id=" + ids[1] + "&page_token=" + q(at),
	} {
		if code, body, _ := e.rest(t, "GET", path, aliceToken, ""); code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "page_token") {
			t.Errorf("REST, %s: %d %v, want 400 naming page_token", name, code, body)
		}
	}
	if code, body, _ := e.rest(t, "GET", "/v1/keys?owner=acme&page_size=1&page_token="+q(kt), aliceToken, ""); code != 200 {
		t.Fatalf("REST, the ListKeys token with its owner: %d %v", code, body)
	}
}
