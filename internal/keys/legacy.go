package keys

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kind is the format a presented key is in.
type Kind int

// Kinds; KindLegacy+i is the i-th legacy format.
const (
	KindUnknown Kind = iota - 1
	KindChecksum
	KindSigned
	KindLegacy
)

// Legacy is a key format keyservice did not issue: keys a team already has
// in customers' hands, imported by hash (keyservice import), told apart by
// prefix and checked against a pattern instead of a checksum.
type Legacy struct {
	Name    string
	Prefix  string
	Pattern *regexp.Regexp
	// Refuse turns the format's keys off (MALFORMED) when a migration is
	// over.
	Refuse bool
}

// MaxLegacyLen bounds keys of legacy formats.
const MaxLegacyLen = 256

// ErrRefused: the key is in a legacy format that is turned off.
var ErrRefused = errors.New("keys: legacy format refused")

// ParseLegacyFormats reads "name:prefix:regex" entries separated by ";"
// (the regex may contain ':'); formats named in refuse are turned off.
func ParseLegacyFormats(s string, refuse []string) ([]Legacy, error) {
	var out []Legacy
	names := map[string]bool{}
	for i, e := range strings.Split(s, ";") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		parts := strings.SplitN(e, ":", 3)
		if len(parts) != 3 || ValidateKid(parts[0]) != nil && !validLegacyName(parts[0]) || parts[1] == "" {
			return nil, fmt.Errorf("entry %d: entries are name:prefix:regex, for example openai:sk-:^sk-[0-9a-f]{32}$", i+1)
		}
		if !strings.HasPrefix(parts[2], "^") || !strings.HasSuffix(parts[2], "$") {
			return nil, fmt.Errorf("format %q: anchor the pattern with ^ and $, so it matches whole keys", parts[0])
		}
		// Anchored as a whole, whatever alternations it holds (^a|b$).
		re, err := regexp.Compile(`^(?:` + parts[2] + `)$`)
		if err != nil {
			return nil, fmt.Errorf("format %q: the pattern does not compile: %v", parts[0], err)
		}
		switch parts[0] {
		case "checksum", "signed", "unknown":
			return nil, fmt.Errorf("format %q: the name is taken by keyservice's own formats", parts[0])
		}
		if names[parts[0]] {
			return nil, fmt.Errorf("format %q is listed twice", parts[0])
		}
		names[parts[0]] = true
		out = append(out, Legacy{Name: parts[0], Prefix: parts[1], Pattern: re})
	}
	for _, r := range refuse {
		if !names[r] {
			return nil, fmt.Errorf("refused format %q is not a legacy format", r)
		}
		for i := range out {
			if out[i].Name == r {
				out[i].Refuse = true
			}
		}
	}
	return out, nil
}

func validLegacyName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (l *Legacy) check(key string) error {
	if len(key) > MaxLegacyLen {
		return ErrTooLong
	}
	if !l.Pattern.MatchString(key) {
		return ErrCharset
	}
	if l.Refuse {
		return ErrRefused
	}
	return nil
}

// WithSigned adds the signed format: prefix (different from the checksum
// format's), and the signing keys, the first of which signs new keys.
func (f Format) WithSigned(prefix string, ks []SigningKey) (Format, error) {
	if prefix == f.prefix {
		return f, fmt.Errorf("the signed format's prefix must differ from the checksum format's (%q)", f.prefix)
	}
	if sp, ok := f.spaces[prefix]; ok {
		return f, fmt.Errorf("the signed format's prefix %q is keyspace %d's", prefix, sp)
	}
	s, err := newSigner(prefix, ks)
	if err != nil {
		return f, err
	}
	f.signed = s
	f.maxLen = max(f.maxLen, MaxSignedLen)
	return f, nil
}

// WithLegacy adds legacy formats. No prefix may overlap another (one a
// prefix of the other), theirs or the checksum, signed and keyspace
// formats': a key must be judged by exactly one format, so a refused one
// stays refused.
func (f Format) WithLegacy(ls []Legacy) (Format, error) {
	all := append(append([]Legacy(nil), f.legacy...), ls...)
	owns := f.ownPrefixes()
	for i, l := range all {
		for _, own := range owns {
			if overlap(l.Prefix, own+"_") {
				return f, fmt.Errorf("legacy format %q: its prefix %q overlaps the prefix %q", l.Name, l.Prefix, own+"_")
			}
		}
		for _, m := range all[:i] {
			if overlap(l.Prefix, m.Prefix) {
				return f, fmt.Errorf("legacy formats %q and %q: their prefixes %q and %q overlap", m.Name, l.Name, m.Prefix, l.Prefix)
			}
		}
	}
	f.legacy = all
	f.maxLen = max(f.maxLen, MaxLegacyLen)
	return f, nil
}

// overlap reports whether a is a prefix of b or b of a.
func overlap(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }

// SignedPrefix is the signed format's prefix ("" when it is off).
func (f Format) SignedPrefix() string {
	if f.signed == nil {
		return ""
	}
	return f.signed.prefix
}

// CanSign reports whether the signed format is configured.
func (f Format) CanSign() bool { return f.signed != nil }

// GenerateSigned makes a new key of the signed format.
func (f Format) GenerateSigned() (Generated, error) {
	if f.signed == nil {
		return Generated{}, errors.New("keys: no signing keys configured")
	}
	secret, err := f.signed.generate(f.signed.prefix)
	if err != nil {
		return Generated{}, err
	}
	return Generated{Secret: secret, Hash: HashOf(secret), Hint: f.Hint(secret)}, nil
}

// KindNames names every kind Classify returns, for metrics: KindUnknown
// is "unknown", then "checksum", "signed", and the legacy formats' names.
func (f Format) KindNames() []string {
	names := []string{"checksum", "signed"}
	for _, l := range f.legacy {
		names = append(names, l.Name)
	}
	return names
}
