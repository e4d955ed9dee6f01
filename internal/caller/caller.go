// Package caller owns "who is calling": the identity the auth interceptor
// establishes (an admin, a caller token, a client certificate, or only an
// address), the admin's name recorded as the actor of the audit trail, and
// the client of the call as its transport saw it (the gRPC peer, or the
// HTTP client the gateway recorded). The interceptors set these; the
// limiter, the handlers and the logs read them here. It is a leaf: it
// imports nothing of keyservice.
package caller

import (
	"context"
	"net/netip"
)

// Kind says how a caller was identified.
type Kind uint8

// Kinds of caller identity, strongest first.
const (
	KindAddr  Kind = iota // the peer (or, through the gateway, HTTP client) address
	KindToken             // a credential (stored, or KEYSERVICE_CALLER_TOKENS)
	KindCert              // a verified client certificate
	KindAdmin             // a bootstrap admin token (KEYSERVICE_ADMIN_TOKENS)
)

func (k Kind) String() string {
	return [...]string{"addr", "token", "cert", "admin"}[k]
}

// Identity is who is calling. It is comparable, so it keys the limiter
// table without building a string per call.
type Identity struct {
	Kind Kind
	Name string // token or certificate name; "admin"
	// Addr is the caller's address, for KindAddr. The limiter keeps budgets
	// per group of addresses; the address itself decides whether it is a
	// trusted proxy.
	Addr netip.Addr
	// Anonymous: a trusted proxy whose forwarded chain (X-Forwarded-For,
	// Forwarded) was missing or did not parse. It counts as an anonymous
	// end client at its own address: it may not name end clients.
	Anonymous bool
	// Own is the caller's own budget when its credential names one (zero:
	// the configured budgets decide).
	Own Budget
}

func (id Identity) String() string {
	if id.Kind == KindAddr {
		return "addr:" + id.Addr.String()
	}
	return id.Kind.String() + ":" + id.Name
}

type identityKey struct{}

// WithIdentity records the authenticated caller in ctx (the auth
// interceptor does this before the limiter runs).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the caller recorded by WithIdentity.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// MayForward reports whether a caller id may name end clients
// (ValidateRequest.client_ip): a caller with a credential, or one whose
// address is among trusted. Everything that believes client_ip asks this.
func MayForward(id Identity, trusted []netip.Prefix) bool {
	if id.Kind != KindAddr {
		return true
	}
	if id.Anonymous {
		return false
	}
	for _, p := range trusted {
		if p.Contains(id.Addr) {
			return true
		}
	}
	return false
}

// Budget is how fast a caller may call: Rate calls a second, Burst at
// once (the limiter enforces it; the configuration names one per caller).
type Budget struct {
	Rate  float64 // per second
	Burst int
}

type actorKey struct{}

// WithActor records the name of the admin token that authenticated the
// call: the actor of the audit trail.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ActorFrom is the name recorded by WithActor ("" for a call that is not
// an admin's).
func ActorFrom(ctx context.Context) string {
	name, _ := ctx.Value(actorKey{}).(string)
	return name
}
