package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// stubKeys answers GetKey with the error its id names and Validate with
// NOT_FOUND (no key record).
type stubKeys struct {
	keyservicev1.UnimplementedKeyServiceServer
}

func (stubKeys) GetKey(_ context.Context, r *keyservicev1.GetKeyRequest) (*keyservicev1.GetKeyResponse, error) {
	if r.GetId() == "bad" {
		st, _ := status.New(codes.InvalidArgument, "id is not a UUID").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "id", Description: "not a UUID"}}})
		return nil, st.Err()
	}
	return nil, status.Error(codes.NotFound, "no key "+r.GetId())
}

func (stubKeys) Validate(context.Context, *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	return &keyservicev1.ValidateResponse{Code: keyservicev1.Code_CODE_NOT_FOUND}, nil
}

func restCall(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	raw, _ := io.ReadAll(rec.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %q is not a JSON object: %v", method, path, rec.Code, raw, err)
	}
	return rec.Code, out
}

// TestRESTErrorsCarryTheStatusNameAndAIP193Envelope: every REST error keeps
// the fields clients read (code: the gRPC number, message, details) and
// adds status, the code's canonical name, and error, AIP-193's envelope
// with the HTTP status as its code, from the handler, the gateway's own
// refusals and routing alike.
func TestRESTErrorsCarryTheStatusNameAndAIP193Envelope(t *testing.T) {
	t.Parallel()
	h, err := REST(t.Context(), stubKeys{}, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		http         int
		code         codes.Code
		name         string
	}{
		{"GET", "/v1/keys/00000000-0000-0000-0000-000000000000", 404, codes.NotFound, "NOT_FOUND"},
		{"GET", "/v1/keys/bad", 400, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"POST", "/v1/keys:validate?x=1", 400, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"DELETE", "/v1/keys", 405, codes.Unimplemented, "UNIMPLEMENTED"},
		{"GET", "/v1/nothing-here", 404, codes.NotFound, "NOT_FOUND"},
	} {
		got, body := restCall(t, h, tc.method, tc.path, "{}")
		env, _ := body["error"].(map[string]any)
		if got != tc.http || body["code"] != float64(tc.code) || body["status"] != tc.name || body["message"] == "" ||
			env == nil || env["code"] != float64(tc.http) || env["status"] != tc.name || env["message"] != body["message"] ||
			!reflect.DeepEqual(env["details"], body["details"]) {
			t.Errorf("%s %s: %d %v, want HTTP %d, code %d, status %s and the same under error with code %d", tc.method, tc.path, got, body, tc.http, tc.code, tc.name, tc.http)
		}
	}
	_, body := restCall(t, h, "GET", "/v1/keys/bad", "")
	details, _ := body["details"].([]any)
	if len(details) != 1 || details[0].(map[string]any)["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
		t.Errorf("details = %v, want the BadRequest with its @type", body["details"])
	}
}

// TestRESTAnswersLeaveOutUnsetMessages: a message field that is not set is
// left out (the OpenAPI file types it as an object or a string, never
// null), while scalars keep being written when false or zero.
func TestRESTAnswersLeaveOutUnsetMessages(t *testing.T) {
	t.Parallel()
	h, err := REST(t.Context(), stubKeys{}, 1<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := restCall(t, h, "POST", "/v1/keys:validate", `{"key":"ks_nope"}`)
	if _, has := body["key"]; code != 200 || has || body["valid"] != false || body["code"] != "CODE_NOT_FOUND" {
		t.Errorf("Validate = %d %v, want valid false, code CODE_NOT_FOUND and no key (not null)", code, body)
	}
	if _, has := body["rate_limit"]; has {
		t.Errorf("Validate = %v, want no rate_limit (not null)", body)
	}
}
