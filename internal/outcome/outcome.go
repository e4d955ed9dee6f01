// Package outcome is the one table of Validate's answers: each outcome's
// number and name (those of the API's Code enum, CODE_ dropped: a test
// holds them equal), what the HTTP gateways answer with it, whether it
// spends the failed-attempt budget, and the line the docs show. Its order is the order in which the
// answers are decided: a key refused by an earlier row is never judged by
// a later one.
//
// Adding an outcome: a value in the proto's Code enum, a constant and a
// row here. Everything else (String, the API code, metric labels,
// forward-auth, Envoy, the docs' table) reads the table. The package
// imports no generated code, so the validation path stays free of it.
package outcome

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/keyservice/keyservice/internal/docmarkers"
)

//go:generate go run ../docmarkers/cmd/gendocs outcomes ../../docs/api.md

// Code is the outcome of a validation: a value, never an error.
type Code int32

// The outcomes, numbered as the API's Code enum.
const (
	Unspecified       Code = 0
	Valid             Code = 1
	Malformed         Code = 2
	NotFound          Code = 3
	Revoked           Code = 4
	Expired           Code = 5
	RateLimited       Code = 6
	Disabled          Code = 7
	Forbidden         Code = 8
	InsufficientScope Code = 9
	UsageExceeded     Code = 10
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
	Code Code
	// Name is the enum value's name without CODE_: the metric label and
	// what String says.
	Name  string
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
	{Code: Malformed, Name: "MALFORMED", Stage: Shape, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`, Failed: true,
		Doc: "not a well-formed key of any configured format (shape, prefix, checksum, signature); decided without any lookup"},
	{Code: NotFound, Name: "NOT_FOUND", Stage: Lookup, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`, Failed: true,
		Doc: "no such key"},
	{Code: Revoked, Name: "REVOKED", Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key was revoked (even if it has also expired)"},
	{Code: Expired, Name: "EXPIRED", Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key's expiry has passed"},
	{Code: Disabled, Name: "DISABLED", Stage: State, HTTP: http.StatusUnauthorized, Challenge: `error="invalid_token"`,
		Doc: "the key is switched off (enabled false)"},
	{Code: Forbidden, Name: "FORBIDDEN", Stage: Call, HTTP: http.StatusForbidden, Challenge: `error="invalid_token", error_description="not allowed from this address"`,
		Doc: "the end client's address is outside the key's allowed_cidrs, or unknown"},
	{Code: InsufficientScope, Name: "INSUFFICIENT_SCOPE", Stage: Call, HTTP: http.StatusForbidden, Challenge: `error="insufficient_scope"`,
		Doc: "the key lacks a scope the call requires"},
	{Code: UsageExceeded, Name: "USAGE_EXCEEDED", Stage: Budget, HTTP: http.StatusPaymentRequired,
		Doc: "the key, or its owner, has fewer credits left than the call's cost (nothing is spent; `refused_by` says whose)"},
	{Code: RateLimited, Name: "RATE_LIMITED", Stage: Budget, HTTP: http.StatusTooManyRequests,
		Doc: "the key is over its rate limit (nothing is spent by a refused call)"},
	{Code: Valid, Name: "VALID", Stage: Budget, HTTP: http.StatusOK,
		Doc: "the key may be used"},
}

var byCode = func() map[Code]*Info {
	m := make(map[Code]*Info, len(table))
	for i := range table {
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
	if i, ok := byCode[c]; ok {
		return i.Name
	}
	return "UNSPECIFIED"
}

// Markdown is the docs' precedence table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| order | code | decided by | forward-auth | meaning |\n|---:|---|---|---:|---|\n")
	stages := map[Stage]string{Shape: "the key's text", Lookup: "the lookup", State: "the key's state", Call: "the call", Budget: "the key's budget"}
	for i, r := range table {
		fmt.Fprintf(&b, "| %d | `CODE_%s` | %s | %d | %s |\n", i+1, r.Name, stages[r.Stage], r.HTTP, r.Doc)
	}
	return b.String()
}

// The markers around the table in docs/api.md.
const (
	DocsBegin = "<!-- outcomes:begin -->"
	DocsEnd   = "<!-- outcomes:end -->"
)

// UpdateDocs puts Markdown between the markers of doc.
func UpdateDocs(doc string) (string, error) {
	return docmarkers.Replace(doc, DocsBegin, DocsEnd, "<!-- Generated from internal/outcome by `make generate`; edit the table there. -->\n\n"+Markdown())
}
