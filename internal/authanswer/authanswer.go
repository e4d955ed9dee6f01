// Package authanswer is the one mapping from a Validate answer (or error)
// to an HTTP answer: status, RFC 6750 challenge, identity, retry and
// budget headers. Forward-auth, Envoy's ext_authz and the Go client's
// middleware answer with it, so they say the same thing the same way.
package authanswer

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/outcome"
)

// Missing is the answer to a request without a key.
func Missing(keyHeader string) Decision {
	return Decision{Status: http.StatusUnauthorized, Headers: map[string]string{"WWW-Authenticate": Challenge(keyHeader)}}
}

// Decision is what a gateway (or a middleware) should do with a request.
type Decision struct {
	Status  int               // HTTP status for the gateway: 200, 401, 402, 403, 429, 503, 500
	Headers map[string]string // identity headers (200) or challenge / retry headers
	Key     *keyservicev1.Key // the key allowed (200 only)
	// Reason names a refusal for Envoy's status message
	// ("USAGE_EXCEEDED: owner").
	Reason string
}

// decide maps a Validate answer (or error) to a gateway decision.
func Decide(resp *keyservicev1.ValidateResponse, err error, keyHeader string, retryMD metadata.MD) Decision {
	if err != nil {
		challenge := map[string]string{"WWW-Authenticate": Challenge(keyHeader)}
		switch status.Code(err) {
		case codes.ResourceExhausted:
			h := map[string]string{"Retry-After": "1"}
			if v := retryMD.Get("retry-after"); len(v) > 0 {
				h["Retry-After"] = v[0]
			}
			return Decision{Status: http.StatusTooManyRequests, Headers: h}
		case codes.Unavailable:
			return Decision{Status: http.StatusServiceUnavailable, Headers: map[string]string{"Retry-After": "1"}}
		case codes.Unauthenticated:
			// The gateway's own caller token was missing or not accepted: a
			// configuration error of the gateway, told apart from a bad key.
			challenge["WWW-Authenticate"] += `, error="invalid_caller", error_description="the gateway's caller token (X-Keyservice-Caller-Token) was not accepted"`
			return Decision{Status: http.StatusUnauthorized, Headers: challenge}
		case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied:
			// A malformed request, or a keyspace named (by the route, or by a
			// client the gateway let name one) that does not exist or that
			// the gateway's credential may not use: no key passes it.
			return Decision{Status: http.StatusUnauthorized, Headers: challenge}
		}
		return Decision{Status: http.StatusInternalServerError}
	}
	row := outcome.Of(outcome.Code(resp.GetCode()))
	reason := row.Name
	if by := resp.GetRefusedBy(); by != keyservicev1.Holder_HOLDER_UNSPECIFIED {
		reason += ": " + HolderName(by)
	}
	switch {
	case row.Code == outcome.Valid:
		k := resp.GetKey()
		h := map[string]string{
			"X-Key-Id":     k.GetId(),
			"X-Key-Owner":  HeaderSafe(k.GetOwner()),
			"X-Key-Scopes": strings.Join(k.GetScopes(), ","),
		}
		if c := resp.GetCredits(); c != nil {
			h["X-Key-Credits-Remaining"] = strconv.FormatInt(c.GetRemaining(), 10)
		}
		return Decision{Status: row.HTTP, Key: k, Headers: h}
	case row.Code == outcome.UsageExceeded:
		// Out of credits: say whose, what is left, and when a refill is due.
		c := resp.GetCredits()
		if resp.GetRefusedBy() == keyservicev1.Holder_HOLDER_OWNER {
			c = resp.GetOwnerCredits()
		}
		h := map[string]string{"X-Refused-By": HolderName(resp.GetRefusedBy()), "X-Credits-Remaining": strconv.FormatInt(c.GetRemaining(), 10)}
		if next := c.GetNextRefillAt(); next != nil {
			h["X-Credits-Refill"] = next.AsTime().UTC().Format(time.RFC3339)
			h["Retry-After"] = strconv.FormatInt(max(int64(math.Ceil(time.Until(next.AsTime()).Seconds())), 1), 10)
		}
		return Decision{Status: row.HTTP, Headers: h, Reason: reason}
	case row.Stage == outcome.Budget && resp.GetRateLimit() != nil:
		// Over a budget: when it is worth trying again.
		rl := resp.GetRateLimit()
		if resp.GetRefusedBy() == keyservicev1.Holder_HOLDER_OWNER && resp.GetOwnerRateLimit() != nil {
			rl = resp.GetOwnerRateLimit()
		}
		secs := int64(math.Ceil(rl.GetReset_().AsDuration().Seconds()))
		return Decision{Status: row.HTTP, Reason: reason, Headers: map[string]string{
			"Retry-After":         strconv.FormatInt(max(secs, 1), 10),
			"RateLimit-Limit":     strconv.FormatInt(rl.GetLimit(), 10),
			"RateLimit-Remaining": "0",
			"RateLimit-Reset":     strconv.FormatInt(max(secs, 1), 10),
			"X-Refused-By":        HolderName(resp.GetRefusedBy()),
		}}
	}
	// Every refusal's status and RFC 6750 challenge come from outcome's
	// table: MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED look the same
	// from outside (401, invalid_token); a good key the route may not use
	// is 403 (insufficient_scope, or not from this address).
	challenge := Challenge(keyHeader)
	if row.Challenge != "" {
		challenge += ", " + row.Challenge
	}
	return Decision{Status: row.HTTP, Headers: map[string]string{"WWW-Authenticate": challenge}, Reason: reason}
}

// holderName names whose budget refused, as headers say it.
func HolderName(h keyservicev1.Holder) string {
	if h == keyservicev1.Holder_HOLDER_OWNER {
		return "owner"
	}
	return "key"
}

// headerSafe percent-encodes (RFC 3986, UTF-8) every byte of v that is not
// printable ASCII, and "%" itself, so an owner such as "Zoë & Co" reaches
// the upstream as one well-formed header value ("Zo%C3%AB & Co") that any
// URL decoder restores; plain ASCII names pass unchanged.
func HeaderSafe(v string) string {
	// Commas would split the value for some proxies, and spaces at either
	// end are trimmed by HTTP: encode them too.
	plain := func(c byte) bool { return c > 0x20 && c < 0x7f && c != '%' && c != ',' }
	inner := func(i int) bool { return i > 0 && i < len(v)-1 && v[i] == ' ' }
	i := 0
	for i < len(v) && (plain(v[i]) || inner(i)) {
		i++
	}
	if i == len(v) {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(v[:i])
	for ; i < len(v); i++ {
		if c := v[i]; plain(c) || inner(i) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

func Challenge(keyHeader string) string {
	if strings.EqualFold(keyHeader, "Authorization") {
		return `Bearer realm="keyservice"`
	}
	return `ApiKey realm="keyservice", header="` + keyHeader + `"`
}

// keyFrom reads the key from the configured header: "Bearer <key>" in
// Authorization, the raw value in any other header.
func KeyFrom(get func(string) string, header string) string {
	v := strings.TrimSpace(get(header))
	if strings.EqualFold(header, "Authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return ""
		}
		return strings.TrimSpace(tok)
	}
	return v
}
