package gateway

import (
	"maps"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestEnvoyHeadersReadHeaderMapAsTheStringMap: header_map is read into the
// shape of Envoy's string map (lower-case names, repeated values joined
// with "," in order, bytes that are not UTF-8 replaced by "!"), so Check
// answers both alike.
func TestEnvoyHeadersReadHeaderMapAsTheStringMap(t *testing.T) {
	t.Parallel()
	raw := func(kv ...string) *authv3.AttributeContext_HttpRequest {
		hm := &corev3.HeaderMap{}
		for i := 0; i+1 < len(kv); i += 2 {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return &authv3.AttributeContext_HttpRequest{HeaderMap: hm}
	}
	for _, tc := range []struct {
		name string
		req  *authv3.AttributeContext_HttpRequest
		want map[string]string
	}{
		{"string map as sent", &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"x-api-key": "k"}}, map[string]string{"x-api-key": "k"}},
		{"names lower-cased", raw("X-API-Key", "k"), map[string]string{"x-api-key": "k"}},
		{"repeated lines joined in order", raw("x-api-key", "a", "Accept", "*/*", "X-Api-Key", "b"), map[string]string{"x-api-key": "a,b", "accept": "*/*"}},
		{"an empty line still counts", raw("x-api-key", "a", "x-api-key", ""), map[string]string{"x-api-key": "a,"}},
		{"bytes that are not UTF-8", raw("x-api-key", "ks_\xff\xfeab"), map[string]string{"x-api-key": "ks_!ab"}},
		{"only ASCII letters fold", raw("x-api-\u212Aey", "k"), map[string]string{"x-api-\u212Aey": "k"}},
		{"value when raw_value is empty", &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-api-key", Value: "k"}}}},
			map[string]string{"x-api-key": "k"}},
		{"header_map wins over the string map", &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"x-api-key": "s"},
			HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-api-key", RawValue: []byte("r")}}}}, map[string]string{"x-api-key": "r"}},
	} {
		if got := envoyHeaders(tc.req); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
