package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := admin(context.Background())
	before := countKeys(t, e.dbURL)
	wrongChecksum, err := keyFormatKey(t)
	if err != nil {
		t.Fatal(err)
	}
	last := wrongChecksum[len(wrongChecksum)-1]
	wrongChecksum = wrongChecksum[:len(wrongChecksum)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']
	oneMiB := strings.Repeat("k", 1<<20)
	past := timestamppb.New(time.Now().Add(-time.Minute))

	type validateCase struct {
		name     string
		key      string
		wantCode codes.Code        // for a transport error
		wantOut  keyservicev1.Code // for an answer
	}
	for _, c := range []validateCase{
		{"empty key", "", codes.InvalidArgument, 0},
		{"one MiB key", oneMiB, codes.OK, keyservicev1.Code_CODE_MALFORMED},
		{"wrong checksum", wrongChecksum, codes.OK, keyservicev1.Code_CODE_MALFORMED},
		{"wrong prefix", "xx" + wrongChecksum[2:], codes.OK, keyservicev1.Code_CODE_MALFORMED},
	} {
		t.Run("Validate/"+c.name, func(t *testing.T) {
			v, err := e.grpc.Validate(ctx, &keyservicev1.ValidateRequest{Key: c.key})
			if status.Code(err) != c.wantCode || (err == nil && (v.GetCode() != c.wantOut || v.GetValid())) {
				t.Fatalf("gRPC: %v, %v", v, err)
			}
			code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, c.key))
			wantHTTP := map[codes.Code]int{codes.OK: 200, codes.InvalidArgument: 400}[c.wantCode]
			if code != wantHTTP || (code == 200 && body["code"] != c.wantOut.String()) {
				t.Fatalf("REST: %d %v", code, body)
			}
			if code != 200 && (body["message"] == nil || body["message"] == "") {
				t.Fatalf("REST error without a message: %v", body)
			}
		})
	}

	t.Run("Validate/invalid UTF-8", func(t *testing.T) {
		// proto3 strings are UTF-8: such bytes are a broken request
		// (INVALID_ARGUMENT), never INTERNAL, over both transports.
		_, err := rawValidate(t, e.srv.GRPCAddr().String(), []byte("ks_\xff\xfe"+strings.Repeat("a", 34)))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("gRPC: %v, want InvalidArgument", err)
		}
		code, body, _ := e.rest(t, "POST", "/v1/keys:validate", "", "{\"key\":\"ks_\xff\xfe\"}")
		if code != http.StatusBadRequest {
			t.Fatalf("REST: %d %v", code, body)
		}
	})

	restCases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown JSON field", "POST", "/v1/keys", `{"name":"n","owner":"o","colour":"red"}`, 400},
		{"malformed JSON", "POST", "/v1/keys", `{"name":"n",`, 400},
		{"JSON of the wrong type", "POST", "/v1/keys", `{"name":12,"owner":"o"}`, 400},
		{"validate unknown field", "POST", "/v1/keys:validate", `{"key":"x","extra":1}`, 400},
		{"validate malformed JSON", "POST", "/v1/keys:validate", `{"key":`, 400},
		{"name over 200", "POST", "/v1/keys", fmt.Sprintf(`{"name":%q,"owner":"o"}`, strings.Repeat("n", 201)), 400},
		{"expiry in the past", "POST", "/v1/keys", fmt.Sprintf(`{"name":"n","owner":"o","expires_at":%q}`, past.AsTime().Format(time.RFC3339)), 400},
		{"missing owner", "POST", "/v1/keys", `{"name":"n"}`, 400},
		{"page size over max", "GET", "/v1/keys?page_size=1001", "", 400},
		{"negative page size", "GET", "/v1/keys?page_size=-1", "", 400},
		{"malformed page token", "GET", "/v1/keys?page_token=not-a-token", "", 400},
		{"non-uuid id (get)", "GET", "/v1/keys/12345", "", 400},
		{"non-uuid id (revoke)", "POST", "/v1/keys/12345:revoke", "", 400},
		{"unknown id (get)", "GET", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a", "", 404},
		{"unknown id (revoke)", "POST", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a:revoke", "", 404},
		{"trailing garbage after the JSON", "POST", "/v1/keys", `{"name":"a","owner":"x"}garbage`, 400},
		{"unknown query parameter", "GET", "/v1/keys?colour=red", "", 400},
		{"unknown query parameter (get)", "GET", "/v1/keys/0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a?verbose=1", "", 400},
		{"a second JSON value", "POST", "/v1/keys", `{"name":"a","owner":"x"}{"name":"b","owner":"y"}`, 400},
		{"validate trailing garbage", "POST", "/v1/keys:validate", `{"key":"ks_x"} x`, 400},
		{"scope with a comma", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["read,admin"]}`, 400},
		{"scope with a space", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["read admin"]}`, 400},
		{"scope with a non-ASCII letter", "POST", "/v1/keys", `{"name":"n","owner":"o","scopes":["lecture-é"]}`, 400},
		{"control character in a metadata value", "POST", "/v1/keys", `{"name":"n","owner":"o","metadata":{"team":"a\r\nX-Evil: 1"}}`, 400},
	}
	for _, c := range restCases {
		t.Run("REST/"+c.name, func(t *testing.T) {
			code, body, _ := e.rest(t, c.method, c.path, adminToken, c.body)
			if code != c.want {
				t.Fatalf("%d %v, want %d", code, body, c.want)
			}
			msg, _ := body["message"].(string)
			if msg == "" || strings.Contains(msg, "SQLSTATE") || strings.Contains(msg, "api_keys") {
				t.Fatalf("unclear or leaky message %q", msg)
			}
		})
	}

	grpcCases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"name over 200", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: strings.Repeat("n", 201), Owner: "o"})
			return err
		}, codes.InvalidArgument},
		{"expiry in the past", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", ExpiresAt: past})
			return err
		}, codes.InvalidArgument},
		{"too many scopes", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: make([]string, 65)})
			return err
		}, codes.InvalidArgument},
		{"scope with a comma", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Scopes: []string{"read", "read,admin"}})
			return err
		}, codes.InvalidArgument},
		{"control character in a metadata value", func() error {
			_, err := e.grpc.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", Metadata: map[string]string{"team": "a\x1b[31m"}})
			return err
		}, codes.InvalidArgument},
		{"page size over max", func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: 5000})
			return err
		}, codes.InvalidArgument},
		{"malformed page token", func() error {
			_, err := e.grpc.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageToken: "AAAA"})
			return err
		}, codes.InvalidArgument},
		{"non-uuid id", func() error {
			_, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: "not-a-uuid"})
			return err
		}, codes.InvalidArgument},
		{"unknown id", func() error {
			_, err := e.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"})
			return err
		}, codes.NotFound},
	}
	for _, c := range grpcCases {
		t.Run("gRPC/"+c.name, func(t *testing.T) {
			err := c.call()
			st := status.Convert(err)
			if st.Code() != c.want || st.Message() == "" {
				t.Fatalf("%v, want %v with a message", err, c.want)
			}
			if c.want == codes.InvalidArgument {
				var found bool
				for _, d := range st.Details() {
					if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
						found = true
					}
				}
				if !found {
					t.Fatalf("no BadRequest detail naming the field: %v", st.Details())
				}
			}
		})
	}

	if after := countKeys(t, e.dbURL); after != before {
		t.Fatalf("bad input wrote %d keys", after-before)
	}
}
