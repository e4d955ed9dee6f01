// Package outcome is the one table of Validate's answers. Each outcome's
// number and name come from the API's Code enum; the table adds what the
// HTTP gateways answer with it, whether it spends the failed-attempt
// budget, and the line the docs show. Its order is the order in which the
// answers are decided: a key refused by an earlier row is never judged by
// a later one.
//
// Adding an outcome: a value in the proto's Code enum, a constant and a
// row here. Everything else (String, the API code, metric labels,
// forward-auth, Envoy, the docs' table) reads the table.
package outcome

import (
	"fmt"
	"net/http"
	"strings"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// Code is the outcome of a validation: a value, never an error.
type Code int32

// The outcomes, numbered as the API's Code enum.
const (
	Unspecified       = Code(keyservicev1.Code_CODE_UNSPECIFIED)
	Valid             = Code(keyservicev1.Code_CODE_VALID)
	Malformed         = Code(keyservicev1.Code_CODE_MALFORMED)
	NotFound          = Code(keyservicev1.Code_CODE_NOT_FOUND)
	Revoked           = Code(keyservicev1.Code_CODE_REVOKED)
	Expired           = Code(keyservicev1.Code_CODE_EXPIRED)
	RateLimited       = Code(keyservicev1.Code_CODE_RATE_LIMITED)
	Disabled          = Code(keyservicev1.Code_CODE_DISABLED)
	Forbidden         = Code(keyservicev1.Code_CODE_FORBIDDEN)
	InsufficientScope = Code(keyservicev1.Code_CODE_INSUFFICIENT_SCOPE)
)

// Stage is where an outcome is decided.
type Stage int

const (
	// Shape: from the key's text alone, before any lookup.
	Shape Stage = iota + 1
	// Lookup: whether the key exists.
	Lookup
	// State: the key's own state (revoked, expired, disabled), the same
	// for every call; the fast path may cache it.
	State
	// Call: what this call asks (its end client's address, its scopes).
	Call
	// Budget: what the key may still spend (its limit).
	Budget
)

// Info is one row of the table.
type Info struct {
	Code  Code
	Stage Stage
	// HTTP is the status forward-auth answers (Envoy's gRPC code follows
	// from it).
	HTTP int
	// Challenge is added to the WWW-Authenticate challenge of a refusal
	// (RFC 6750 error attributes).
	Challenge string
	// Failed: the answer spends the caller's failed-attempt budget (the
	// key is not one of ours).
	Failed bool
	// Doc is the docs' line for it.
	Doc string
}

// table is in the order of precedence.
var table = []Info{
	{Code: Malformed, Stage: Shape, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`, Failed: true,
		Doc: "not a well-formed key of any configured format (shape, prefix, checksum, signature); decided without any lookup"},
	{Code: NotFound, Stage: Lookup, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`, Failed: true,
		Doc: "no such key"},
	{Code: Revoked, Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key was revoked (even if it has also expired)"},
	{Code: Expired, Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key's expiry has passed"},
	{Code: Disabled, Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key is switched off (enabled false)"},
	{Code: Forbidden, Stage: Call, HTTP: http.StatusForbidden, Challenge: `error="invalid_token", error_description="not allowed from this address"`,
		Doc: "the end client's address is outside the key's allowed_cidrs, or unknown"},
	{Code: InsufficientScope, Stage: Call, HTTP: http.StatusForbidden, Challenge: `error="insufficient_scope"`,
		Doc: "the key lacks a scope the call requires"},
	{Code: RateLimited, Stage: Budget, HTTP: http.StatusTooManyRequests,
		Doc: "the key is over its rate limit (nothing is spent by a refused call)"},
	{Code: Valid, Stage: Budget, HTTP: http.StatusOK,
		Doc: "the key may be used"},
}

var byCode = func() map[Code]*Info {
	m := make(map[Code]*Info, len(table))
	for i := range table {
		if _, ok := keyservicev1.Code_name[int32(table[i].Code)]; !ok {
			panic(fmt.Sprintf("outcome: %d is not a value of the API's Code enum", table[i].Code))
		}
		m[table[i].Code] = &table[i]
	}
	return m
}()

// All is every outcome, in the order of precedence.
func All() []Info { return table }

// Of is c's row; an unknown code is refused as NOT_FOUND is (fail closed).
func Of(c Code) Info {
	if i, ok := byCode[c]; ok {
		return *i
	}
	return *byCode[NotFound]
}

// String is the enum's name without CODE_: VALID, NOT_FOUND, …
func (c Code) String() string {
	if n, ok := keyservicev1.Code_name[int32(c)]; ok {
		return strings.TrimPrefix(n, "CODE_")
	}
	return "UNSPECIFIED"
}

// Proto is c as the API sends it.
func (c Code) Proto() keyservicev1.Code { return keyservicev1.Code(c) }

// FromProto is the API's code as an outcome.
func FromProto(c keyservicev1.Code) Code { return Code(c) }

// Markdown is the docs' precedence table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| order | code | decided by | forward-auth | meaning |\n|---:|---|---|---:|---|\n")
	stages := map[Stage]string{Shape: "the key's text", Lookup: "the lookup", State: "the key's state", Call: "the call", Budget: "the key's budget"}
	for i, r := range table {
		fmt.Fprintf(&b, "| %d | `CODE_%s` | %s | %d | %s |\n", i+1, r.Code, stages[r.Stage], r.HTTP, r.Doc)
	}
	return b.String()
}
