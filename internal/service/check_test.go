package service

import (
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/keys"
)

// TestCheckHintTakesKeyservicesOwnHintsAndNoSecret: CheckHint, which
// keyservice import applies to the hints it is given, accepts every hint
// keyservice makes itself (the longest prefix, checksum and signed) and
// refuses each of those keys' secrets.
func TestCheckHintTakesKeyservicesOwnHintsAndNoSecret(t *testing.T) {
	t.Parallel()
	var made []keys.Generated
	for _, prefix := range []string{"ks", strings.Repeat("p", keys.MaxPrefixLen)} {
		f, err := keys.NewFormat(prefix)
		if err != nil {
			t.Fatal(err)
		}
		sk, err := keys.ParseSigningKeys("k1:" + strings.Repeat("QUJD", 11))
		if err != nil {
			t.Fatal(err)
		}
		if f, err = f.WithSigned(strings.Repeat("s", keys.MaxPrefixLen), sk); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			g, err := f.Generate()
			if err != nil {
				t.Fatal(err)
			}
			s, err := f.GenerateSigned()
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, g, s)
		}
	}
	for _, g := range made {
		if err := CheckHint(g.Hint); err != nil {
			t.Fatalf("keyservice's own hint %q: %v", g.Hint, err)
		}
		if err := CheckHint(g.Secret); err == nil {
			t.Fatalf("a secret passed as a hint: %q", g.Hint)
		}
	}
	for _, bad := range []string{"sk-" + strings.Repeat("0a", 16), "sk-\u202e1234", strings.Repeat("x", 41)} {
		if CheckHint(bad) == nil {
			t.Errorf("hint %q accepted", bad)
		}
	}
}
