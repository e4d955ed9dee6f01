// Package keys owns the API key format: generating keys, parsing them
// cheaply (shape, prefix, checksum) and hashing them. It is pure: no I/O
// beyond crypto/rand.
//
// A key looks like
//
//	<prefix>_<body><checksum>
//
// where body is 30 base62 characters from crypto/rand (178 bits) and
// checksum is the CRC32 (IEEE) of the body, base62-encoded and zero-padded
// to 6 characters, as in GitHub's token format. The checksum lets Parse
// reject typos and garbage without any lookup; it is not a secret and adds
// no security.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

const (
	// BodyLen is the number of random base62 characters in a key.
	BodyLen = 30
	// ChecksumLen is the number of base62 characters of the CRC32 checksum.
	ChecksumLen = 6
	// MaxPrefixLen bounds the configurable prefix.
	MaxPrefixLen = 16
	// MaxLen is the longest string Parse looks at; anything longer is
	// rejected before any other work.
	MaxLen = MaxPrefixLen + 1 + BodyLen + ChecksumLen

	// DefaultPrefix is the prefix used when none is configured.
	DefaultPrefix = "ks"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors returned by Parse. All of them mean "malformed"; they are told apart
// for tests and logs, never for the caller.
var (
	ErrEmpty    = errors.New("keys: empty key")
	ErrTooLong  = errors.New("keys: key too long")
	ErrCharset  = errors.New("keys: invalid character in key")
	ErrPrefix   = errors.New("keys: wrong prefix")
	ErrLength   = errors.New("keys: wrong length")
	ErrChecksum = errors.New("keys: checksum mismatch")
)

// Hash is the SHA-256 of a whole key string: the only identity keyservice
// stores, caches or sends between replicas.
type Hash [sha256.Size]byte

// String returns the hash in hex. A hash is not a secret, but it is still
// not something to log casually.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Format generates and parses keys: the checksum format with its prefix,
// and, when configured, the signed format (signed.go), legacy formats
// (legacy.go) and further keyspaces (spaces.go), told apart by their
// prefixes.
type Format struct {
	prefix string
	signed *signer
	legacy []Legacy
	// Keyspaces 1..n by prefix and by number; never written once set, so
	// copies of a Format share them (WithSpace replaces both).
	spaces      map[string]int
	spacePrefix map[int]string
	maxLen      int // the longest key any format accepts
}

// NewFormat returns a Format for prefix, which must be 1 to 16 characters of
// lowercase ASCII letters and digits.
func NewFormat(prefix string) (Format, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Format{}, err
	}
	return Format{prefix: prefix, maxLen: MaxLen}, nil
}

// ValidatePrefix explains why prefix cannot be used, or returns nil.
func ValidatePrefix(prefix string) error {
	if len(prefix) == 0 || len(prefix) > MaxPrefixLen {
		return fmt.Errorf("prefix must be 1 to %d characters, got %d", MaxPrefixLen, len(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("prefix %q may contain only a-z and 0-9", prefix)
		}
	}
	return nil
}

// Prefix returns the format's prefix.
func (f Format) Prefix() string { return f.prefix }

// Generated is a freshly generated key. Secret is shown to the user once and
// never stored.
type Generated struct {
	Secret string
	Hash   Hash
	Hint   string
}

// Generate makes a new random key.
func (f Format) Generate() (Generated, error) {
	secret, err := generateChecksum(f.prefix)
	if err != nil {
		return Generated{}, err
	}
	return Generated{Secret: secret, Hash: HashOf(secret), Hint: f.Hint(secret)}, nil
}

func generateChecksum(prefix string) (string, error) {
	body := make([]byte, BodyLen)
	if err := randomBase62(body); err != nil {
		return "", fmt.Errorf("keys: reading random bytes: %w", err)
	}
	buf := make([]byte, 0, len(prefix)+1+BodyLen+ChecksumLen)
	buf = append(buf, prefix...)
	buf = append(buf, '_')
	buf = append(buf, body...)
	buf = appendChecksum(buf, body)
	return string(buf), nil
}

// Hint returns the display hint of a key: its prefix and last 4
// characters. The prefix is the key's own when it is one of the format's
// (checksum, signed or a keyspace's), else the checksum format's.
func (f Format) Hint(key string) string {
	prefix := f.prefix
	if i := prefixEnd(key); i > 0 && f.ownPrefix(key[:i]) {
		prefix = key[:i]
	}
	if len(key) < 4 {
		return prefix + "_..."
	}
	return prefix + "_..." + key[len(key)-4:]
}

// Parse checks the key's shape, prefix and checksum (or signature, or
// legacy pattern), cheapest test first, and returns nil if the key is well
// formed.
func (f Format) Parse(key string) error {
	_, err := f.Classify(key)
	return err
}

// Classify tells which format key is in (KindChecksum, KindSigned, or
// KindLegacy+i for the i-th legacy format; KindUnknown when none) and
// whether it is well formed in it. Keys of every keyspace are classified
// alike; Locate also tells the keyspace.
func (f Format) Classify(key string) (Kind, error) {
	kind, _, err := f.Locate(key)
	return kind, err
}

// Locate is Classify that also tells the key's keyspace: 0 for the
// checksum, signed and legacy formats, the keyspace's number for its
// prefix, -1 when the kind is KindUnknown. It never allocates.
func (f Format) Locate(key string) (kind Kind, space int, err error) {
	n := len(key)
	switch {
	case n == 0:
		return KindUnknown, -1, ErrEmpty
	case n > f.maxLen:
		return KindUnknown, -1, ErrTooLong
	}
	// The default keyspace first, so that its keys cost what they did
	// before keyspaces.
	if s := f.signed; s != nil && n > len(s.prefix) && key[len(s.prefix)] == '_' && key[:len(s.prefix)] == s.prefix {
		return KindSigned, 0, s.verify(key)
	}
	if n > len(f.prefix) && key[len(f.prefix)] == '_' && key[:len(f.prefix)] == f.prefix {
		return KindChecksum, 0, checkChecksum(key, len(f.prefix))
	}
	// Prefixes hold no '_', so the first one ends the only prefix the key
	// can be in; indexing a map by a substring does not allocate.
	if len(f.spaces) > 0 {
		if i := prefixEnd(key); i > 0 {
			if sp, ok := f.spaces[key[:i]]; ok {
				kind, err := f.checkSpace(key, i)
				return kind, sp, err
			}
		}
	}
	for i := range f.legacy {
		if l := &f.legacy[i]; strings.HasPrefix(key, l.Prefix) {
			return KindLegacy + Kind(i), 0, l.check(key)
		}
	}
	return KindUnknown, -1, ErrPrefix
}

// prefixEnd is the index of the '_' that ends key's prefix, or -1 when
// there is none where a prefix could end.
func prefixEnd(key string) int {
	return strings.IndexByte(key[:min(len(key), MaxPrefixLen+1)], '_')
}

// checkChecksum checks a key of the checksum format whose prefix, plen
// bytes, and '_' were matched. It never allocates.
func checkChecksum(key string, plen int) error {
	n := len(key)
	if n > MaxLen {
		return ErrTooLong
	}
	if n != plen+1+BodyLen+ChecksumLen {
		return ErrLength
	}
	rest := key[plen+1:]
	for i := 0; i < len(rest); i++ {
		if base62Value[rest[i]] < 0 {
			return ErrCharset
		}
	}
	body, sum := rest[:BodyLen], rest[BodyLen:]
	var want6 [ChecksumLen]byte
	encodeChecksum(want6[:], crcString(body))
	if string(want6[:]) != sum {
		return ErrChecksum
	}
	return nil
}

// HashOf returns the SHA-256 of key. Keys of up to MaxSignedLen bytes are copied
// to the stack first, so hashing a well-formed key does not allocate.
func HashOf(key string) Hash {
	if len(key) <= MaxSignedLen {
		var buf [MaxSignedLen]byte
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

func appendChecksum(buf, body []byte) []byte {
	var sum [ChecksumLen]byte
	encodeChecksum(sum[:], crc32.ChecksumIEEE(body))
	return append(buf, sum[:]...)
}

// crcString is crc32.ChecksumIEEE for a string, without converting it to a
// []byte (which would allocate on every Parse).
func crcString(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// encodeChecksum writes v in base62, most significant digit first,
// zero-padded to len(dst). 62^6 > 2^32, so six digits always suffice.
func encodeChecksum(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = alphabet[v%62]
		v /= 62
	}
}

// randomBase62 fills dst with uniformly random base62 characters, using
// rejection sampling so no character is more likely than another.
func randomBase62(dst []byte) error {
	var buf [64]byte
	i := 0
	for i < len(dst) {
		if _, err := rand.Read(buf[:]); err != nil {
			return err
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62; reject to keep the distribution uniform
				continue
			}
			dst[i] = alphabet[b%62]
			i++
			if i == len(dst) {
				break
			}
		}
	}
	return nil
}

var base62Value = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()
