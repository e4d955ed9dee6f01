package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// httpClientAddr is the address of the HTTP client: the connection's peer,
// or, when that peer is a trusted proxy, the nearest address of the
// forwarded chain (X-Forwarded-For, else RFC 7239 Forwarded) that is not
// itself a trusted proxy. unusable reports a trusted peer whose chain is
// missing or does not parse: the peer's own address is returned, and it
// must then count as an anonymous end client (never as a proxy that may
// name end clients: a bad header must not make a body field believed).
func httpClientAddr(r *http.Request, trusted []netip.Prefix) (addr netip.Addr, unusable bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr = ap.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr, false
	}
	if end, ok := forwardedClientOf(r.Header, trusted); ok {
		return end, false
	}
	return addr, true
}

// forwardedClientOf walks the forwarded chain from the nearest hop (the
// right): X-Forwarded-For, or without it RFC 7239 Forwarded "for=". It
// returns the first hop that is not a trusted proxy; only the hops up to
// it must parse (what a client put further left cannot spoil the chain).
// ok is false when there is no chain, a hop up to the client does not
// parse ("unknown", an obfuscated identifier, garbage), or every hop is a
// trusted proxy. A hop may be addr, addr:port, [IPv6] or [IPv6]:port.
func forwardedClientOf(h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	var raw []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			raw = append(raw, strings.Split(v, ",")...)
		}
	} else {
		for _, v := range h.Values("Forwarded") {
			for _, elem := range strings.Split(v, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, val, found := strings.Cut(strings.TrimSpace(pair), "=")
					if found && strings.EqualFold(k, "for") {
						raw = append(raw, strings.Trim(val, `"`))
					}
				}
			}
		}
	}
	for i := len(raw) - 1; i >= 0; i-- {
		hop, ok := parseHop(strings.TrimSpace(raw[i]))
		if !ok {
			return netip.Addr{}, false
		}
		if !isTrusted(hop, trusted) {
			return hop, true
		}
	}
	return netip.Addr{}, false
}

// hasForwardedChain reports whether the request carries a forwarded chain
// at all (any X-Forwarded-For or Forwarded line, even an empty one).
func hasForwardedChain(h http.Header) bool {
	return len(h.Values("X-Forwarded-For")) > 0 || len(h.Values("Forwarded")) > 0
}

// parseHop reads an address, address:port, [IPv6] or [IPv6]:port.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the HTTP client's address as REST sees it: behind a
// trusted proxy, the end client its forwarded chain names (unusable: the
// chain was missing or bad, and the proxy's own address is returned).
func ClientAddr(r *http.Request, trusted []netip.Prefix) (addr netip.Addr, unusable bool) {
	return httpClientAddr(r, trusted)
}
