package keys

import (
	"errors"
	"strings"
	"testing"
)

func mustFormat(t testing.TB, prefix string) Format {
	t.Helper()
	f, err := NewFormat(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGenerateParsesAndHashes(t *testing.T) {
	f := mustFormat(t, "ks")
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Parse(g.Secret); err != nil {
			t.Fatalf("Parse(%q) = %v", g.Secret, err)
		}
		if !strings.HasPrefix(g.Secret, "ks_") || len(g.Secret) != 3+BodyLen+ChecksumLen {
			t.Fatalf("unexpected shape %q", g.Secret)
		}
		if g.Hash != HashOf(g.Secret) {
			t.Fatal("hash is not SHA-256 of the secret")
		}
		if want := "ks_..." + g.Secret[len(g.Secret)-4:]; g.Hint != want {
			t.Fatalf("hint %q, want %q", g.Hint, want)
		}
		if seen[g.Secret] {
			t.Fatal("duplicate key generated")
		}
		seen[g.Secret] = true
	}
}

func TestGenerateUsesWholeAlphabet(t *testing.T) {
	f := mustFormat(t, "ks")
	counts := map[byte]int{}
	for i := 0; i < 2000; i++ {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		body := g.Secret[3 : 3+BodyLen]
		for j := 0; j < len(body); j++ {
			counts[body[j]]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("body used %d distinct characters, want 62", len(counts))
	}
	// 60,000 draws over 62 symbols: each expected ~968. A biased generator
	// (for example b%62 without rejection) skews the first 8 symbols by ~25%.
	for c, n := range counts {
		if n < 800 || n > 1150 {
			t.Errorf("character %q drawn %d times, outside [800,1150]", c, n)
		}
	}
}

func TestParse(t *testing.T) {
	f := mustFormat(t, "ks")
	good, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k := good.Secret
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	other := mustFormat(t, "live")
	otherKey, _ := other.Generate()

	tests := []struct {
		name string
		key  string
		want error
	}{
		{"valid", k, nil},
		{"empty", "", ErrEmpty},
		{"one MiB", strings.Repeat("a", 1<<20), ErrTooLong},
		{"just over max", strings.Repeat("a", MaxLen+1), ErrTooLong},
		{"short", k[:len(k)-1], ErrLength},
		{"long", k + "a", ErrLength},
		{"other prefix", otherKey.Secret, ErrPrefix}, // formats are told apart by prefix first,
		{"same length other prefix", "xx" + k[2:], ErrPrefix},
		{"missing underscore", "ks-" + k[3:], ErrPrefix},
		{"invalid utf8", k[:10] + "\xff" + k[11:], ErrCharset},
		{"space", k[:10] + " " + k[11:], ErrCharset},
		{"underscore in body", k[:10] + "_" + k[11:], ErrCharset},
		{"typo in body", flip(k, 5), ErrChecksum},
		{"typo in checksum", flip(k, len(k)-1), ErrChecksum},
		{"swapped case", k[:3] + strings.ToUpper(k[3:]), ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Parse(tt.key); !errors.Is(got, tt.want) {
				t.Fatalf("Parse = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewFormatRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "KS", "k_s", "k-s", "ünï", strings.Repeat("a", MaxPrefixLen+1)} {
		if _, err := NewFormat(p); err == nil {
			t.Errorf("NewFormat(%q) accepted", p)
		}
	}
	for _, p := range []string{"k", "ks", "live2", strings.Repeat("a", MaxPrefixLen)} {
		if _, err := NewFormat(p); err != nil {
			t.Errorf("NewFormat(%q) = %v", p, err)
		}
	}
}

func TestChecksumEncodingIsFixedWidth(t *testing.T) {
	for _, v := range []uint32{0, 1, 61, 62, 1 << 31, ^uint32(0)} {
		var d [ChecksumLen]byte
		encodeChecksum(d[:], v)
		var back uint64
		for _, c := range d {
			back = back*62 + uint64(base62Value[c])
		}
		if uint32(back) != v {
			t.Errorf("encode(%d) = %q decodes to %d", v, d, back)
		}
	}
}

func FuzzParse(f *testing.F) {
	fm := mustFormat(f, "ks")
	g, _ := fm.Generate()
	f.Add(g.Secret)
	f.Add("")
	f.Add("ks_")
	f.Add("ks_000000000000000000000000000000000000")
	// Locate, on this format and on one with every kind of format and
	// keyspace, never panics and agrees with Classify.
	full := testSpaces(f, true)
	alone := aloneFormats(f, full)
	for _, sp := range [][2]int{{0, 0}, {0, 1}, {2, 0}, {2, 1}, {3, 1}} {
		f.Add(mustGenerateIn(f, full, sp[0], sp[1] == 1).Secret)
	}
	f.Add("us_k2_")
	f.Add("sk-0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		checkLocate(t, fm, nil, s)
		checkLocate(t, full, alone, s)
		err := fm.Parse(s)
		if err != nil {
			return
		}
		// Whatever Parse accepts must have the exact shape and a checksum that
		// matches, so it can be hashed and looked up safely.
		if len(s) != 3+BodyLen+ChecksumLen || !strings.HasPrefix(s, "ks_") {
			t.Fatalf("accepted %q with wrong shape", s)
		}
		body := s[3 : 3+BodyLen]
		var want [ChecksumLen]byte
		buf := appendChecksum(nil, []byte(body))
		copy(want[:], buf)
		if string(want[:]) != s[3+BodyLen:] {
			t.Fatalf("accepted %q with wrong checksum", s)
		}
	})
}

func BenchmarkParseValid(b *testing.B) {
	f := mustFormat(b, "ks")
	g, _ := f.Generate()
	b.ReportAllocs()
	for b.Loop() {
		if f.Parse(g.Secret) != nil {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkParseBadChecksum(b *testing.B) {
	f := mustFormat(b, "ks")
	g, _ := f.Generate()
	bad := g.Secret[:len(g.Secret)-1] + "0"
	if bad == g.Secret {
		bad = g.Secret[:len(g.Secret)-1] + "1"
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Parse(bad)
	}
}

func BenchmarkHash(b *testing.B) {
	f := mustFormat(b, "ks")
	g, _ := f.Generate()
	b.ReportAllocs()
	for b.Loop() {
		_ = HashOf(g.Secret)
	}
}
