package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestRESTAnswersAreNeverCached: every REST answer (a secret, an identity,
// an error) says Cache-Control: no-store.
func TestRESTAnswersAreNeverCached(t *testing.T) {
	t.Parallel()
	e := start(t)
	code, body, hdr := e.rest(t, "POST", "/v1/keys", adminToken, `{"name":"n","owner":"o"}`)
	if code != 200 || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("CreateKey: %d, Cache-Control %q", code, hdr.Get("Cache-Control"))
	}
	secret, _ := body["secret"].(string)
	id, _ := body["key"].(map[string]any)["id"].(string)
	for _, c := range []struct{ method, path, token, body string }{
		{"POST", "/v1/keys:validate", "", fmt.Sprintf(`{"key":%q}`, secret)},
		{"GET", "/v1/keys/" + id, adminToken, ""},
		{"GET", "/v1/keys", adminToken, ""},
		{"GET", "/v1/keys/" + id, "", ""}, // an error answer
	} {
		if _, _, hdr := e.rest(t, c.method, c.path, c.token, c.body); hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", c.method, c.path, hdr.Get("Cache-Control"))
		}
	}
}

// TestIdentityHeadersAreEncodedSafely: an owner outside printable ASCII
// reaches the gateway percent-encoded, in one well-formed header.
func TestIdentityHeadersAreEncodedSafely(t *testing.T) {
	t.Parallel()
	e := start(t)
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "Zoë & Co 100%"})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, e.base+"/v1/auth", map[string]string{"Authorization": "Bearer " + created.GetSecret()})
	if resp.StatusCode != 200 || resp.Header.Get("X-Key-Owner") != "Zo%C3%AB & Co 100%25" {
		t.Fatalf("%d, X-Key-Owner %q, want %q", resp.StatusCode, resp.Header.Get("X-Key-Owner"), "Zo%C3%AB & Co 100%25")
	}
}

// TestForwardAuthTellsABadCallerTokenFromABadKey: a gateway whose own
// caller token is wrong (a configuration error) gets a 401 that says so,
// distinct from the 401 for a wrong key.
func TestForwardAuthTellsABadCallerTokenFromABadKey(t *testing.T) {
	t.Parallel()
	e := start(t, withConfig(func(c *config.Config) { c.CallerTokens = map[string]string{"nginx": tokenA} }))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(key, callerToken string) *http.Response {
		return get(t, e.base+"/v1/auth", map[string]string{"Authorization": "Bearer " + key, "X-Keyservice-Caller-Token": callerToken})
	}
	if r := auth(created.GetSecret(), tokenA); r.StatusCode != 200 {
		t.Fatalf("valid key, good caller token: %d", r.StatusCode)
	}
	badCaller := auth(created.GetSecret(), "not-the-token-0123456789")
	if badCaller.StatusCode != 401 || !strings.Contains(badCaller.Header.Get("WWW-Authenticate"), `error="invalid_caller"`) {
		t.Fatalf("bad caller token: %d %q, want 401 with error=\"invalid_caller\"", badCaller.StatusCode, badCaller.Header.Get("WWW-Authenticate"))
	}
	badKey := auth(created.GetSecret()+"x", tokenA)
	if badKey.StatusCode != 401 || !strings.Contains(badKey.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("bad key: %d %q, want 401 with error=\"invalid_token\"", badKey.StatusCode, badKey.Header.Get("WWW-Authenticate"))
	}
}

// TestGatewayLogLinesAreStructured: grpc-gateway's own complaint about a
// client's header (it logs through grpclog) lands in the service's JSON
// log, not as a plain-text line on stderr.
func TestGatewayLogLinesAreStructured(t *testing.T) {
	// Not parallel: grpclog is process-wide, and goes to the logger of the
	// server built last.
	e := start(t)
	r, _ := http.NewRequest("POST", e.base+"/v1/keys:validate", strings.NewReader(`{"key":"x"}`))
	r.Header.Set("User-Agent", "café-client/1.0") // a permanent header, passed on as metadata
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), "non-ASCII") })
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "non-ASCII") && !(strings.HasPrefix(line, "{") && strings.Contains(line, `"source":"grpc"`)) {
			t.Fatalf("not a structured line: %s", line)
		}
	}
}

// TestUndecodableProtobufIsInvalidArgument: bytes that are not a valid
// request (invalid UTF-8 in a string field, a truncated message) are the
// client's mistake: INVALID_ARGUMENT, not INTERNAL; nothing is written.
func TestUndecodableProtobufIsInvalidArgument(t *testing.T) {
	t.Parallel()
	e := start(t)
	before := countKeys(t, e.dbURL)
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	field := func(num protowire.Number, v string) []byte {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendBytes(b, []byte(v))
	}
	valid := append(field(1, "n"), field(2, "o")...)
	for name, body := range map[string][]byte{
		"invalid UTF-8 in name":   append(field(1, "n\xff\xfe"), field(2, "o")...),
		"invalid UTF-8 in owner":  append(field(1, "n"), field(2, "\xc3\x28")...),
		"invalid UTF-8 in scopes": append(valid, field(3, "read\xff")...),
		"truncated":               valid[:len(valid)-1],
		"a field with no value":   {0x0a},
	} {
		var out []byte
		err := conn.Invoke(admin(context.Background()), keyservicev1.KeyService_CreateKey_FullMethodName, &body, &out)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateKey, %s: %v, want InvalidArgument", name, err)
		}
	}
	var out []byte
	if err := conn.Invoke(admin(context.Background()), keyservicev1.KeyService_CreateKey_FullMethodName, &valid, &out); err != nil {
		t.Fatalf("the same request, well formed: %v", err)
	}
	if n := countKeys(t, e.dbURL) - before; n != 1 {
		t.Fatalf("%d keys written, want only the well-formed one", n)
	}
}

// TestUndecodableProtobufIsInvalidArgumentOnEveryService: the same bytes
// sent to Envoy's Check, to health (Check and Watch) and to reflection are
// INVALID_ARGUMENT too, as on KeyService (they were INTERNAL, "cannot parse
// invalid wire-format data"); a well-formed request is still served.
func TestUndecodableProtobufIsInvalidArgumentOnEveryService(t *testing.T) {
	t.Parallel()
	e := start(t)
	conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	field := func(num protowire.Number, v string) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), []byte(v))
	}
	// CheckRequest.attributes.context_extensions{"\xff": ""}: a string
	// three messages deep.
	badCheck := field(1, string(field(10, string(field(1, "\xff")))))
	for _, c := range []struct {
		method string
		stream bool
		bad    map[string][]byte
		good   []byte
	}{
		{authv3.Authorization_Check_FullMethodName, false, map[string][]byte{
			"invalid UTF-8": badCheck, "truncated": badCheck[:len(badCheck)-1], "a field with no value": {0x0a},
		}, field(1, "")},
		{healthpb.Health_Check_FullMethodName, false, map[string][]byte{
			"invalid UTF-8": field(1, "\xff"), "truncated": field(1, "ab")[:3], "a field with no value": {0x0a},
		}, field(1, "")},
		{healthpb.Health_Watch_FullMethodName, true, map[string][]byte{
			"invalid UTF-8": field(1, "\xff"), "a field with no value": {0x0a},
		}, field(1, "")},
		{reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName, true, map[string][]byte{
			"invalid UTF-8": field(7, "\xff"), "a field with no value": {0x0a},
		}, field(7, "*")},
	} {
		call := func(body []byte) error {
			var out []byte
			if !c.stream {
				return conn.Invoke(context.Background(), c.method, &body, &out)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, c.method)
			if err != nil {
				return err
			}
			if err := s.SendMsg(&body); err != nil {
				return err
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			return s.RecvMsg(&out) // the first answer, or the error
		}
		for name, body := range c.bad {
			if err := call(body); status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s, %s: %v, want InvalidArgument", c.method, name, err)
			}
		}
		if err := call(c.good); err != nil {
			t.Errorf("%s, well formed: %v", c.method, err)
		}
	}
}

// TestHeaderSafeKeepsOneUnambiguousValue: commas and spaces at either end
// are encoded too (a proxy may split on commas; HTTP trims the spaces).
func TestHeaderSafeKeepsOneUnambiguousValue(t *testing.T) {
	t.Parallel()
	e := start(t)
	for owner, want := range map[string]string{
		"acme":         "acme",
		"Acme, Inc.":   "Acme%2C Inc.",
		" admin ":      "%20admin%20",
		"a\r\nX-Evil:": "", // refused at creation: control characters
	} {
		created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "n", Owner: owner})
		if want == "" {
			if err == nil {
				t.Fatalf("owner %q with control characters was accepted", owner)
			}
			continue
		}
		if err != nil {
			t.Fatalf("owner %q: %v", owner, err)
		}
		resp := get(t, e.base+"/v1/auth", map[string]string{"Authorization": "Bearer " + created.GetSecret()})
		if got := resp.Header.Get("X-Key-Owner"); got != want {
			t.Fatalf("owner %q: X-Key-Owner %q, want %q", owner, got, want)
		}
	}
}
