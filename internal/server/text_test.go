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
)

// TestFreeTextFieldsShareOneRule: every free-text field — name, owner,
// metadata keys and values (create and update), the owner and actor
// filters of the lists — refuses what name refuses: U+202E (which
// reverses the text after it on screen), U+2028 (a line separator),
// control characters. INVALID_ARGUMENT naming the field over gRPC, 400
// over REST, and nothing is written.
func TestFreeTextFieldsShareOneRule(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	_, k := createKey(t, e, nil)
	events := auditCount(t, e)
	for _, bad := range []string{"evil\u202etxt.exe", "two\u2028lines", "bell\a", "zero\u200bwidth"} {
		calls := map[string]func() error{
			"name": func() error {
				_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: bad, Owner: "o"})
				return err
			},
			"owner": func() error {
				_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: bad})
				return err
			},
			"metadata": func() error { // a value
				_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Metadata: map[string]string{"team": bad}})
				return err
			},
			"metadata ": func() error { // a key
				_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Metadata: map[string]string{bad: "v"}})
				return err
			},
			"key.metadata": func() error {
				_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Metadata: map[string]string{"team": bad}}, UpdateMask: mask("metadata")})
				return err
			},
			"key.name": func() error {
				_, err := e.grpc.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: k.GetId(), Name: bad}, UpdateMask: mask("name")})
				return err
			},
			"owner ": func() error { // the ListKeys filter
				_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: bad})
				return err
			},
			"actor": func() error {
				_, err := e.grpc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{Actor: bad})
				return err
			},
		}
		for field, call := range calls {
			err := call()
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), strings.TrimSpace(field)+": ") {
				t.Errorf("gRPC %s %q: %v, want INVALID_ARGUMENT naming %s", field, bad, err, strings.TrimSpace(field))
			}
		}
		js := fmt.Sprintf("%q", bad)
		for name, req := range map[string][3]string{
			"metadata value": {"POST", "/v1/keys", `{"name":"n","owner":"o","metadata":{"team":` + js + `}}`},
			"metadata key":   {"POST", "/v1/keys", `{"name":"n","owner":"o","metadata":{` + js + `:"v"}}`},
			"update":         {"PATCH", "/v1/keys/" + k.GetId() + "?update_mask=metadata", `{"metadata":{"team":` + js + `}}`},
			"owner filter":   {"GET", "/v1/keys?owner=" + url.QueryEscape(bad), ""},
			"actor filter":   {"GET", "/v1/audit-events?actor=" + url.QueryEscape(bad), ""},
		} {
			if code, body, _ := e.rest(t, req[0], req[1], adminToken, req[2]); code != 400 {
				t.Errorf("REST %s %q: %d %v, want 400", name, bad, code, body)
			}
		}
	}
	if n := auditCount(t, e); n != events {
		t.Fatalf("refused requests wrote %d audit events", n-events)
	}
	// Printable text of any script is fine, in metadata as in name.
	if _, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "Zoë & Co", Owner: "東京", Metadata: map[string]string{"équipe": "café ☕", "empty": ""}}); err != nil {
		t.Fatalf("printable text: %v", err)
	}
}
