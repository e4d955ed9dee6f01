package bench

import (
	"math/rand/v2"
	"strings"

	"github.com/keyservice/keyservice/internal/keys"
)

// malformedCharset holds printable ASCII without quote or backslash, so a
// malformed key is still valid JSON as is.
const malformedCharset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.!~*()+=:;,/?@#$%^&"

// malformedKeys returns n keys that keyservice must judge MALFORMED without
// any lookup: random strings, right shape with a wrong checksum, and
// oversize keys, in equal parts.
func malformedKeys(f keys.Format, n int, rng *rand.Rand) []string {
	out := make([]string, n)
	for i := range out {
		switch i % 3 {
		case 0:
			b := make([]byte, 1+rng.IntN(60))
			for j := range b {
				b[j] = malformedCharset[rng.IntN(len(malformedCharset))]
			}
			out[i] = string(b)
		case 1:
			g, _ := f.Generate()
			b := []byte(g.Secret)
			// Change one body character: the checksum no longer matches.
			j := len(f.Prefix()) + 1 + rng.IntN(keys.BodyLen)
			if b[j] == 'A' {
				b[j] = 'B'
			} else {
				b[j] = 'A'
			}
			out[i] = string(b)
		case 2:
			out[i] = f.Prefix() + "_" + strings.Repeat("x", 200+rng.IntN(56))
		}
	}
	return out
}

// unknownKeys returns n distinct well-formed keys (right prefix and
// checksum) that were never created.
func unknownKeys(f keys.Format, n int) []string {
	out := make([]string, n)
	for i := range out {
		g, _ := f.Generate()
		out[i] = g.Secret
	}
	return out
}

// benchSigningKeys sign the bench service's signed keys (every mode has
// them, so the forged scenario meets the same configuration everywhere).
const benchSigningKeys = "b1:YmVuY2gtc2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"

// forgedKeys makes n signed keys of a listed kid with random tags: the
// flood a forger without the secret can make.
func forgedKeys(n int, r *rand.Rand) []string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]string, n)
	b := make([]byte, keys.SignedBodyLen+keys.TagLen)
	for i := range out {
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		out[i] = "kss_b1_" + string(b)
	}
	return out
}
