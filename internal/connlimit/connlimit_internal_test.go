package connlimit

import (
	"net"
	"net/netip"
	"testing"
)

func addrOf(t *testing.T, s string) (raw, counted netip.Addr) {
	t.Helper()
	raw, counted, ok := clientAddr(&net.TCPAddr{IP: net.ParseIP(s), Port: 1})
	if !ok {
		t.Fatalf("no address for %s", s)
	}
	return raw, counted
}

// TestExemptionIsByTheClientsOwnAddress: a trusted proxy listed as one
// IPv6 address is exempt although connections are counted by /64, a
// trusted prefix smaller than a /64 does not exempt the rest of that /64,
// and an exempt proxy may use the reserve.
func TestExemptionIsByTheClientsOwnAddress(t *testing.T) {
	l := New(nil, Config{Caps: Caps{MaxConns: 20, MaxConnsPerAddr: 2}, Exempt: []netip.Prefix{
		netip.MustParsePrefix("2001:db8::10/128"), netip.MustParsePrefix("2001:db8:1::/120"),
	}})
	proxyRaw, proxy := addrOf(t, "2001:db8::10")
	for i := 0; i < 5; i++ {
		if r := l.admit(proxyRaw, proxy, true); r != "" {
			t.Fatalf("connection %d of an exempt /128 proxy refused: %s", i+1, r)
		}
	}
	outsideRaw, outside := addrOf(t, "2001:db8:1::1:1") // same /64 as the /120, outside it
	for i := 0; i < 2; i++ {
		if r := l.admit(outsideRaw, outside, true); r != "" {
			t.Fatalf("connection %d refused: %s", i+1, r)
		}
	}
	if r := l.admit(outsideRaw, outside, true); r != "per_address" {
		t.Errorf("an address outside the exempt /120 got %q, want per_address", r)
	}
	// Fill the listener up to its reserve (the last 2 of 20).
	for l.open < 18 {
		if r := l.admit(proxyRaw, proxy, true); r != "" {
			t.Fatalf("filling: %s", r)
		}
	}
	if r := l.admit(outsideRaw, outside, true); r != "per_listener" {
		t.Errorf("an address already holding connections got %q in the reserve, want per_listener", r)
	}
	if r := l.admit(proxyRaw, proxy, true); r != "" {
		t.Errorf("the exempt proxy was refused the reserve: %s", r)
	}
}
