package gateway

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestForwardedClientIsTheNearestUntrustedHop(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string // "" : no usable end client
	}{
		{"one hop", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"client-sent hops on the left are skipped", http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.7, 10.0.0.2"}}, "203.0.113.7"},
		{"garbage left of the client does not spoil it", http.Header{"X-Forwarded-For": {"garbage, 203.0.113.7"}}, "203.0.113.7"},
		{"garbage at the client is unusable", http.Header{"X-Forwarded-For": {"203.0.113.7, unknown"}}, ""},
		{"every hop trusted", http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2"}}, ""},
		{"ports and brackets", http.Header{"X-Forwarded-For": {"[2001:db9::1]:443, 10.1.1.1:80"}}, "2001:db9::1"},
		{"several lines", http.Header{"X-Forwarded-For": {"198.51.100.1", "203.0.113.9"}}, "203.0.113.9"},
		{"RFC 7239", http.Header{"Forwarded": {`for=198.51.100.4;proto=https, for="[2001:db9::5]:1234"`}}, "2001:db9::5"},
		{"X-Forwarded-For wins over Forwarded", http.Header{"X-Forwarded-For": {"203.0.113.1"}, "Forwarded": {"for=198.51.100.4"}}, "203.0.113.1"},
		{"no chain", http.Header{}, ""},
	} {
		got, ok := forwardedClientOf(tc.header, trusted)
		switch {
		case tc.want == "" && ok:
			t.Errorf("%s: got %v, want no end client", tc.name, got)
		case tc.want != "" && (!ok || got != netip.MustParseAddr(tc.want)):
			t.Errorf("%s: got %v (%v), want %s", tc.name, got, ok, tc.want)
		}
	}
}
