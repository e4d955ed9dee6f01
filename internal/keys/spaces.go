package keys

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Keyspaces: besides the default keyspace (space 0: the checksum, signed
// and legacy formats), a Format may accept keys of further keyspaces,
// numbered from 1, each with its own prefix, so a key's keyspace is known
// from its shape before it is hashed. A keyspace's keys come in two forms,
// told apart by shape:
//
//	<prefix>_<body><checksum>     as the checksum format's
//	<prefix>_<kid>_<body><tag>    as the signed format's, when it is on
//
// The checksum form's body and checksum are base62 (no '_'), while a kid is
// 1 to 8 of a-z 0-9 followed by '_'. Signed keys of every keyspace use the
// same signing keys; the tag covers the prefix, so it binds the key to its
// keyspace. The checksum covers only the body and so does not: the prefix
// tells the keyspace, and the record found by the key's hash decides the
// rest.

// WithSpace returns a copy of f that also accepts keys of prefix as
// keyspace space (1 or more, not yet taken). f is left as it was.
func (f Format) WithSpace(prefix string, space int) (Format, error) {
	if space < 1 {
		return f, fmt.Errorf("keyspace %d: keyspaces are numbered from 1 (0 is the default keyspace)", space)
	}
	if p, ok := f.spacePrefix[space]; ok {
		return f, fmt.Errorf("keyspace %d is taken, by the prefix %q", space, p)
	}
	if err := f.CheckSpacePrefix(prefix); err != nil {
		return f, err
	}
	// Copy on write: other copies of f share its maps.
	byPrefix := make(map[string]int, len(f.spaces)+1)
	maps.Copy(byPrefix, f.spaces)
	byPrefix[prefix] = space
	byNumber := make(map[int]string, len(f.spacePrefix)+1)
	maps.Copy(byNumber, f.spacePrefix)
	byNumber[space] = prefix
	f.spaces, f.spacePrefix = byPrefix, byNumber
	f.maxLen = max(f.maxLen, MaxLen) // a signed form is only there with WithSigned, which sets its own
	return f, nil
}

// CheckSpacePrefix explains why WithSpace would refuse prefix, whatever the
// keyspace's number, or returns nil.
func (f Format) CheckSpacePrefix(prefix string) error {
	if err := ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("keyspace prefix: %w", err)
	}
	switch prefix {
	case f.prefix:
		return fmt.Errorf("keyspace prefix %q is the checksum format's", prefix)
	case f.SignedPrefix():
		return fmt.Errorf("keyspace prefix %q is the signed format's", prefix)
	}
	if sp, ok := f.spaces[prefix]; ok {
		return fmt.Errorf("keyspace prefix %q is keyspace %d's", prefix, sp)
	}
	// A key must be judged by exactly one format (see WithLegacy).
	for _, l := range f.legacy {
		if overlap(l.Prefix, prefix+"_") {
			return fmt.Errorf("keyspace prefix %q: %q overlaps the prefix %q of legacy format %q", prefix, prefix+"_", l.Prefix, l.Name)
		}
	}
	return nil
}

// SpacePrefix is keyspace space's prefix: the checksum format's for space
// 0, "" for a keyspace f does not have.
func (f Format) SpacePrefix(space int) string {
	if space == 0 {
		return f.prefix
	}
	return f.spacePrefix[space]
}

// GenerateIn makes a new key in keyspace space (0: Generate or
// GenerateSigned), signed or of the checksum form.
func (f Format) GenerateIn(space int, signed bool) (Generated, error) {
	if signed && f.signed == nil {
		return Generated{}, errors.New("keys: no signing keys configured")
	}
	prefix := f.SpacePrefix(space)
	switch {
	case prefix == "":
		return Generated{}, fmt.Errorf("keys: no keyspace %d", space)
	case signed && space == 0:
		prefix = f.signed.prefix
	}
	var secret string
	var err error
	if signed {
		secret, err = f.signed.generate(prefix)
	} else {
		secret, err = generateChecksum(prefix)
	}
	if err != nil {
		return Generated{}, err
	}
	return Generated{Secret: secret, Hash: HashOf(secret), Hint: f.Hint(secret)}, nil
}

// checkSpace checks a key of a keyspace whose prefix, plen bytes, and '_'
// were matched.
func (f Format) checkSpace(key string, plen int) (Kind, error) {
	if f.signed != nil {
		rest := key[plen+1:]
		if i := strings.IndexByte(rest[:min(len(rest), MaxKidLen+1)], '_'); i > 0 {
			return KindSigned, f.signed.verifyAt(key, plen)
		}
	}
	return KindChecksum, checkChecksum(key, plen)
}

// ownPrefix reports whether p is the prefix of one of f's own formats.
func (f Format) ownPrefix(p string) bool {
	if p == f.prefix || p == f.SignedPrefix() {
		return true
	}
	_, ok := f.spaces[p]
	return ok
}

// ownPrefixes lists the prefixes of f's own formats, keyspaces in order of
// their numbers (for stable error messages).
func (f Format) ownPrefixes() []string {
	out := []string{f.prefix}
	if f.signed != nil {
		out = append(out, f.signed.prefix)
	}
	for _, sp := range slices.Sorted(maps.Keys(f.spacePrefix)) {
		out = append(out, f.spacePrefix[sp])
	}
	return out
}
