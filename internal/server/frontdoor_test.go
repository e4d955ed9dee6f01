package server_test

import (
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/config"
)

// TestRESTErrorsAreJSONWithTheRightStatus: malformed JSON says it is the
// JSON, a wrong method is 405, an unknown path is a JSON 404, and an empty
// key is a 400 naming the field; every error body is a google.rpc.Status.
func TestRESTErrorsAreJSONWithTheRightStatus(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", "/v1/keys:validate", `{"key":`, 400, "not valid JSON"},
		{"GET", "/v1/keys:validate", "", 405, "not allowed"},
		{"DELETE", "/v1/keys", "", 405, "not allowed"},
		{"GET", "/nope", "", 404, "no such path"},
		{"GET", "/v1/nope", "", 404, "Not Found"},
		{"POST", "/v1/keys:validate", `{"key":""}`, 400, "key: is required"},
	} {
		code, body, hdr := e.rest(t, tc.method, tc.path, "", tc.body)
		if code != tc.status || !strings.Contains(body["message"].(string), tc.message) {
			t.Errorf("%s %s: %d %v, want %d mentioning %q", tc.method, tc.path, code, body, tc.status, tc.message)
		}
		if _, ok := body["code"].(float64); !ok || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: not a JSON Status: %v (%s)", tc.method, tc.path, body, hdr.Get("Content-Type"))
		}
	}
}

// TestFirstStartWithMigrateLogsNoFailedLoad: on an empty database served
// with --migrate, the key filter waits for the migrations, so the first
// start logs no failed load of a table that does not exist yet.
func TestFirstStartWithMigrateLogsNoFailedLoad(t *testing.T) {
	t.Parallel()
	e := startOn(t, newEmptyDatabase(t), withConfig(func(c *config.Config) { c.Migrate = true }))
	e.waitReady(t)
	if logs := e.logs.String(); strings.Contains(logs, "loading the key filter failed") || strings.Contains(logs, "does not exist") {
		t.Fatalf("the first start logged a failed load:\n%s", logs)
	}
}
