package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/perm"
)

// The flag.Values of the settings whose values are lists or pairs, and
// of the secrets; the kinds made of them are used in settings.go.
var (
	legacyKind = valueKind("legacy formats", "formats", "`name:prefix:regex` entries separated by `;`",
		func(p *[]keys.Legacy) *legacyFormats { return (*legacyFormats)(p) })
	limitsKind = valueKind("caller limits", "limits", "comma-separated `name=rate:burst`, such as `billing=500:1000`",
		func(p *map[string]caller.Budget) *callerLimits { return (*callerLimits)(p) })
	prefixesKind = valueKind("list of CIDRs", "cidrs", "comma-separated CIDRs or single addresses, such as `10.0.0.0/8,192.168.1.7`",
		func(p *[]netip.Prefix) *prefixes { return (*prefixes)(p) })
	permsKind = valueKind("admin permissions", "permissions", "comma-separated `name=permission+permission`, such as `billing=keys.read+audit.read`",
		func(p *map[string]perm.Set) *adminPerms { return (*adminPerms)(p) })
	keyRateKind = valueKind("limit/period", "limit/period", "a whole number of calls, `/`, a duration: `1000/1m`, `10/1s`",
		func(p *apikey.RateLimit) *keyRate { return (*keyRate)(p) })
)

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// callerTokens reads name:token pairs. Its Set never fails, because the
// flag package would print the rejected value, tokens and all: a problem
// is kept for Validate, whose messages name entries, never tokens.
type callerTokens struct {
	m   *map[string]string
	err *error
}

func (v *callerTokens) String() string {
	if v.m == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.m), 1)*8)
}

func (v *callerTokens) Set(s string) error {
	m := map[string]string{}
	var problem error
	for i, pair := range splitList(s) {
		name, tok, ok := strings.Cut(pair, ":")
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch {
		case problem != nil:
		case !ok || !validName(name):
			problem = fmt.Errorf("entries are name:token, names of a-z A-Z 0-9 . _ -; entry %d is not", i+1)
		case tok == "":
			problem = fmt.Errorf("caller %q has no token", name)
		case m[name] != "":
			problem = fmt.Errorf("caller %q is listed twice", name)
		}
		m[name] = tok
	}
	*v.m, *v.err = m, problem
	return nil
}

// adminTokens reads admin tokens, each name:token or a bare token (named
// admin-<position>). Like callerTokens, its Set never fails: a problem is
// kept for Validate, whose messages never show a token.
type adminTokens struct {
	tokens, names *[]string
	err           *error
}

func (v *adminTokens) String() string {
	if v.tokens == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.tokens), 1)*8)
}

func (v *adminTokens) Set(s string) error {
	var tokens, names []string
	var problem error
	seenName, seenToken := map[string]bool{}, map[string]bool{}
	for i, entry := range splitList(s) {
		name, tok, named := strings.Cut(entry, ":")
		if !named {
			name, tok = fmt.Sprintf("admin-%d", i+1), entry
		}
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		// Messages name entries by position only: a mistyped entry may
		// hold the token on either side of its colon.
		switch {
		case problem != nil:
		case !validName(name):
			problem = fmt.Errorf("entries are name:token or a bare token (a token containing ':' must be given a name: name:token), names of a-z A-Z 0-9 . _ -; entry %d is not", i+1)
		case reservedActors[strings.ToLower(name)]:
			problem = fmt.Errorf("entry %d: the name %s is reserved for the audit trail's own actors", i+1, name)
		case tok == "":
			problem = fmt.Errorf("entry %d has no token", i+1)
		case seenName[name]:
			problem = fmt.Errorf("entry %d: its name is used twice", i+1)
		case seenToken[tok]:
			problem = fmt.Errorf("entry %d: its token is listed twice (each admin needs a token of its own, or the audit trail cannot tell them apart)", i+1)
		}
		seenName[name], seenToken[tok] = true, true
		tokens, names = append(tokens, tok), append(names, name)
	}
	*v.tokens, *v.names, *v.err = tokens, names, problem
	return nil
}

// reservedActors are the audit trail's actors that are not admin tokens.
var reservedActors = map[string]bool{"system": true, "secret-scanning": true}

// signingKeys reads kid:<base64> pairs. Like callerTokens, its Set never
// fails (the flag package would print the secrets).
type signingKeys struct {
	ks  *[]keys.SigningKey
	err *error
}

func (v *signingKeys) String() string {
	if v.ks == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.ks), 1)*8)
}

func (v *signingKeys) Set(s string) error {
	*v.ks, *v.err = keys.ParseSigningKeys(s)
	return nil
}

// legacyFormats reads name:prefix:regex entries separated by ";".
type legacyFormats []keys.Legacy

func (v *legacyFormats) String() string {
	var parts []string
	for _, l := range *v {
		parts = append(parts, l.Name+":"+l.Prefix+":"+l.Pattern.String())
	}
	return strings.Join(parts, ";")
}

func (v *legacyFormats) Set(s string) error {
	ls, err := keys.ParseLegacyFormats(s, nil)
	if err != nil {
		return err
	}
	*v = ls
	return nil
}

// callerLimits reads name=rate:burst overrides.
type callerLimits map[string]caller.Budget

func (v *callerLimits) String() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(*v)) {
		b := (*v)[name]
		parts = append(parts, fmt.Sprintf("%s=%g:%d", name, b.Rate, b.Burst))
	}
	return strings.Join(parts, ",")
}

func (v *callerLimits) Set(s string) error {
	m := map[string]caller.Budget{}
	for _, e := range splitList(s) {
		name, rb, ok1 := strings.Cut(e, "=")
		r, b, ok2 := strings.Cut(rb, ":")
		rate, err1 := strconv.ParseFloat(strings.TrimSpace(r), 64)
		burst, err2 := strconv.Atoi(strings.TrimSpace(b))
		name = strings.TrimSpace(name)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || !validName(name) || rate <= 0 || burst < 1 {
			return fmt.Errorf("entries are name=rate:burst, for example billing=500:1000; %q is not", e)
		}
		m[name] = caller.Budget{Rate: rate, Burst: burst}
	}
	*v = m
	return nil
}

// adminPerms reads name=permission+permission entries: what a bootstrap
// admin token may do, when not everything.
type adminPerms map[string]perm.Set

func (v *adminPerms) String() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(*v)) {
		parts = append(parts, name+"="+strings.Join((*v)[name].Names(), "+"))
	}
	return strings.Join(parts, ",")
}

func (v *adminPerms) Set(s string) error {
	m := map[string]perm.Set{}
	for _, e := range splitList(s) {
		name, ps, ok := strings.Cut(e, "=")
		name = strings.TrimSpace(name)
		if !ok || !validName(name) {
			return fmt.Errorf("entries are name=permission+permission, for example billing=keys.read+audit.read; %q is not", e)
		}
		set, err := perm.Parse(splitOn(ps, "+"))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if set == 0 {
			return fmt.Errorf("%s: no permission named", name)
		}
		m[name] = set
	}
	*v = m
	return nil
}

func splitOn(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// prefixes reads comma-separated CIDRs or single addresses.
type prefixes []netip.Prefix

func (v *prefixes) String() string {
	var parts []string
	for _, p := range *v {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

func (v *prefixes) Set(s string) error {
	var out []netip.Prefix
	for _, e := range splitList(s) {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return fmt.Errorf("%q is neither a CIDR nor an address", e)
		}
		if a.Zone() != "" {
			// fe80::%eth0/64 reads as the address fe80:: in zone "eth0/64":
			// a zone is never what a peer's address carries.
			return fmt.Errorf("%q has a zone (%%%s); zones are not allowed: write the CIDR without it", e, a.Zone())
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*v = out
	return nil
}

// keyRate reads limit/period, such as 1000/1m.
type keyRate apikey.RateLimit

func (v *keyRate) String() string { return fmt.Sprintf("%d/%s", v.Limit, ShortDuration(v.Period)) }
func (v *keyRate) Set(s string) error {
	l, err := apikey.ParseRate(s) // the one reading of limit/period (the CLI's too)
	if err != nil {
		return err
	}
	*v = keyRate{Limit: l.Limit, Period: l.Period}
	return nil
}

// secretString reads one secret; String never shows it.
type secretString struct{ s *string }

func (v *secretString) String() string {
	if v.s == nil || *v.s == "" {
		return ""
	}
	return "********"
}

func (v *secretString) Set(s string) error {
	*v.s = strings.TrimSpace(s)
	return nil
}
