package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Signed keys carry a keyed tag, so a key no one issued is told apart
// without any lookup, even when its shape is right:
//
//	<prefix>_<kid>_<body><tag>
//
//   - prefix: the signed format's own prefix (KEYSERVICE_SIGNED_KEY_PREFIX),
//     1 to 16 of a-z 0-9, different from the checksum format's;
//   - kid: the id of the signing secret, 1 to 8 of a-z 0-9;
//   - body: 24 random base62 characters (142 bits);
//   - tag: the first 128 bits of HMAC-SHA-256(secret of kid,
//     "<prefix>_<kid>_<body>"), as two 64-bit halves of 11 base62
//     characters each (22 characters).
//
// Everything before the tag is signed, so changing the prefix, kid or body
// invalidates it. Truncating HMAC-SHA-256 to 128 bits is safe for
// authentication (NIST SP 800-107: at least 64 bits): a forger without the
// secret must guess the tag, one chance in 2^128 per try, and every try is
// answered MALFORMED at the cost of one HMAC, before hashing, filter, cache
// or database.

const (
	// SignedBodyLen is the number of random base62 characters of a signed key.
	SignedBodyLen = 24
	// TagLen is the number of base62 characters of a signed key's tag.
	TagLen = 22
	// MaxKidLen bounds a signing key id.
	MaxKidLen = 8
	// MinSigningSecret is the shortest signing secret accepted, in bytes.
	MinSigningSecret = 32
	// MaxSignedLen is the longest signed key.
	MaxSignedLen = MaxPrefixLen + 1 + MaxKidLen + 1 + SignedBodyLen + TagLen
)

// Errors of the signed format; all of them mean "malformed".
var (
	ErrUnknownKid = errors.New("keys: unknown signing key id")
	ErrSignature  = errors.New("keys: signature mismatch")
)

// SigningKey is one server secret that signs or verifies keys.
type SigningKey struct {
	Kid    string
	Secret []byte
}

// ParseSigningKeys reads "kid:<base64 secret>,..." (standard or URL-safe
// base64, padded or not). The first signs new keys.
func ParseSigningKeys(s string) ([]SigningKey, error) {
	var out []SigningKey
	seen := map[string]bool{}
	for i, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		kid, b64, ok := strings.Cut(e, ":")
		if !ok || ValidateKid(kid) != nil {
			return nil, fmt.Errorf("entry %d: entries are kid:<base64 secret>, kid 1 to %d of a-z 0-9", i+1, MaxKidLen)
		}
		if seen[kid] {
			return nil, fmt.Errorf("kid %q is listed twice", kid)
		}
		var secret []byte
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(b64); err == nil {
				secret = b
				break
			}
		}
		if secret == nil {
			return nil, fmt.Errorf("kid %q: the secret is not base64", kid)
		}
		if len(secret) < MinSigningSecret {
			return nil, fmt.Errorf("kid %q: the secret is %d bytes; use at least %d random bytes", kid, len(secret), MinSigningSecret)
		}
		seen[kid] = true
		out = append(out, SigningKey{Kid: kid, Secret: secret})
	}
	return out, nil
}

// ValidateKid explains why kid cannot be used, or returns nil.
func ValidateKid(kid string) error {
	if len(kid) == 0 || len(kid) > MaxKidLen {
		return fmt.Errorf("kid must be 1 to %d characters", MaxKidLen)
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("kid %q may contain only a-z and 0-9", kid)
		}
	}
	return nil
}

// signer signs and verifies keys of the signed format.
type signer struct {
	prefix string
	first  *verifier
	byKid  map[string]*verifier
}

type verifier struct {
	kid  string
	pool sync.Pool // of *macState
}

// macState is an HMAC-SHA-256 keyed with one secret, with its buffers
// (pooled, so verifying allocates nothing).
type macState struct {
	h   hash.Hash
	buf [MaxSignedLen]byte
	sum [sha256.Size]byte
}

func newSigner(prefix string, ks []SigningKey) (*signer, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, errors.New("keys: the signed format needs at least one signing key")
	}
	s := &signer{prefix: prefix, byKid: map[string]*verifier{}}
	for _, k := range ks {
		secret := append([]byte(nil), k.Secret...)
		v := &verifier{kid: k.Kid}
		v.pool.New = func() any { return &macState{h: hmac.New(sha256.New, secret)} }
		s.byKid[k.Kid] = v
		if s.first == nil {
			s.first = v
		}
	}
	return s, nil
}

// tag writes the tag of signed (everything before the tag) into dst.
func (v *verifier) tag(dst *[TagLen]byte, signed string) {
	m := v.pool.Get().(*macState)
	m.h.Reset()
	n := copy(m.buf[:], signed)
	m.h.Write(m.buf[:n])
	m.h.Sum(m.sum[:0])
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(m.sum[i])
		lo = lo<<8 | uint64(m.sum[8+i])
	}
	v.pool.Put(m)
	encode64(dst[:11], hi)
	encode64(dst[11:], lo)
}

// encode64 writes v in base62, most significant digit first, zero-padded
// to len(dst) (11 digits hold any 64-bit value: 62^11 > 2^64).
func encode64(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = alphabet[v%62]
		v /= 62
	}
}

// generate makes a signed key under prefix: the signed format's own, or a
// keyspace's.
func (s *signer) generate(prefix string) (string, error) {
	body := make([]byte, SignedBodyLen)
	if err := randomBase62(body); err != nil {
		return "", fmt.Errorf("keys: reading random bytes: %w", err)
	}
	signed := prefix + "_" + s.first.kid + "_" + string(body)
	var t [TagLen]byte
	s.first.tag(&t, signed)
	return signed + string(t[:]), nil
}

// verify checks a key that starts with the signed prefix and '_'.
func (s *signer) verify(key string) error { return s.verifyAt(key, len(s.prefix)) }

// verifyAt checks a signed key whose prefix, plen bytes, and '_' were
// matched. The tag covers the prefix, so a key moved to another prefix
// fails.
func (s *signer) verifyAt(key string, plen int) error {
	if len(key) > MaxSignedLen {
		return ErrTooLong
	}
	rest := key[plen+1:]
	kid, tail, ok := strings.Cut(rest, "_")
	if !ok || len(tail) != SignedBodyLen+TagLen {
		return ErrLength
	}
	v := s.byKid[kid]
	if v == nil {
		return ErrUnknownKid
	}
	for i := 0; i < len(tail); i++ {
		if base62Value[tail[i]] < 0 {
			return ErrCharset
		}
	}
	var want [TagLen]byte
	v.tag(&want, key[:len(key)-TagLen])
	var got [TagLen]byte
	copy(got[:], key[len(key)-TagLen:])
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return ErrSignature
	}
	return nil
}
