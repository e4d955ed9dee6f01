package keys

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func testSigned(t testing.TB) Format {
	t.Helper()
	f, err := NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseSigningKeys("k2:" + strings.Repeat("QUJD", 11) + ",k1:" + strings.Repeat("eHl6", 11))
	if err != nil {
		t.Fatal(err)
	}
	if f, err = f.WithSigned("kss", ks); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSignedKeysVerifyAndForgeriesDoNot(t *testing.T) {
	t.Parallel()
	f := testSigned(t)
	g, err := f.GenerateSigned()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.Secret, "kss_k2_") || len(g.Secret) != len("kss_k2_")+SignedBodyLen+TagLen {
		t.Fatalf("signed key %q: wrong layout", g.Secret)
	}
	if kind, err := f.Classify(g.Secret); kind != KindSigned || err != nil {
		t.Fatalf("a signed key: %v, %v", kind, err)
	}
	// Every single-character change anywhere is refused.
	for i := 0; i < len(g.Secret); i++ {
		b := []byte(g.Secret)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := f.Classify(string(b)); err == nil {
			t.Fatalf("altered at %d, %q verified", i, b)
		}
	}
	// A key signed by a listed older kid verifies; an unlisted kid does not.
	old := testSigned(t)
	old.signed.first = old.signed.byKid["k1"]
	g1, _ := old.GenerateSigned()
	if _, err := f.Classify(g1.Secret); err != nil {
		t.Fatalf("a key of the second signing key: %v", err)
	}
	if _, err := f.Classify("kss_k9_" + g1.Secret[len("kss_k1_"):]); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("unknown kid: %v", err)
	}
	// Checksum keys still work beside them.
	c, _ := f.Generate()
	if kind, err := f.Classify(c.Secret); kind != KindChecksum || err != nil {
		t.Fatalf("a checksum key next to signed ones: %v, %v", kind, err)
	}
}

func TestSigningKeysAreChecked(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"k1", "K1:" + strings.Repeat("QUJD", 11), "k1:short", "k1:!!!", "toolongkid:" + strings.Repeat("QUJD", 11),
		"k1:" + strings.Repeat("QUJD", 11) + ",k1:" + strings.Repeat("QUJD", 11)} {
		if _, err := ParseSigningKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
		if _, err := ParseSigningKeys(bad); err != nil && bytes.Contains([]byte(err.Error()), []byte("QUJD")) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
}

func TestLegacyFormats(t *testing.T) {
	t.Parallel()
	ls, err := ParseLegacyFormats("openai:sk-:^sk-[0-9a-f]{32}$; old:old_:^old_[A-Z]{10}$", []string{"old"})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := NewFormat("ks")
	if f, err = f.WithLegacy(ls); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]struct {
		kind Kind
		err  error
	}{
		"sk-0123456789abcdef0123456789abcdef": {KindLegacy, nil},
		"sk-0123456789abcdef0123456789abcdeX": {KindLegacy, ErrCharset},
		"old_ABCDEFGHIJ":                      {KindLegacy + 1, ErrRefused},
		"zz-nothing":                          {KindUnknown, ErrPrefix},
	} {
		kind, err := f.Classify(key)
		if kind != want.kind || !errors.Is(err, want.err) && !(err == nil && want.err == nil) {
			t.Errorf("%q: %v, %v; want %v, %v", key, kind, err, want.kind, want.err)
		}
	}
	for _, bad := range []string{"x", "a:b:^(unclosed$", "a:b:unanchored", "a:b:^x$;a:c:^y$", "signed:q:^q$"} {
		if _, err := ParseLegacyFormats(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseLegacyFormats("a:b:^x$", []string{"nope"}); err == nil {
		t.Error("refusing an unknown format was accepted")
	}
	if _, err := f.WithLegacy([]Legacy{{Name: "clash", Prefix: "ks_", Pattern: regexp.MustCompile("^ks_$")}}); err == nil {
		t.Error("a legacy prefix overlapping ks_ was accepted")
	}
	// Overlapping legacy prefixes would let a refused format's keys be
	// judged by another.
	two, _ := ParseLegacyFormats("a:sk-:^sk-[a-z-]+$;b:sk-proj-:^sk-proj-[a-z]+$", []string{"b"})
	if _, err := NewFormatMust(t).WithLegacy(two); err == nil {
		t.Error("overlapping legacy prefixes sk- and sk-proj- were accepted")
	}
	// An alternation is anchored as a whole.
	alt, _ := ParseLegacyFormats("alt:zz:^zz1|zz2$", nil)
	fa, _ := NewFormatMust(t).WithLegacy(alt)
	if _, err := fa.Classify("zz1-and-more"); err == nil {
		t.Error("^zz1|zz2$ matched zz1-and-more")
	}
}

func BenchmarkVerifySigned(b *testing.B) {
	f := testSigned(b)
	g, _ := f.GenerateSigned()
	forged := g.Secret[:len(g.Secret)-1] + "A"
	if forged == g.Secret {
		forged = g.Secret[:len(g.Secret)-1] + "B"
	}
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.Parse(g.Secret)
		}
	})
	b.Run("forged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.Parse(forged)
		}
	})
}

func NewFormatMust(t *testing.T) Format {
	t.Helper()
	f, err := NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
