package keys

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The test keyspaces: space 0 is ks (checksum), kss (signed) and the legacy
// sk- format; then eu, us and a prefix of the longest length.
var longPrefix = strings.Repeat("z", MaxPrefixLen)

func signingKeys(t testing.TB) []SigningKey {
	t.Helper()
	ks, err := ParseSigningKeys("k2:" + strings.Repeat("QUJD", 11) + ",k1:" + strings.Repeat("eHl6", 11))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// testSpaces builds the full format, adding the signing keys before or
// after the keyspaces: both orders must give the same format.
func testSpaces(t testing.TB, signedFirst bool) Format {
	t.Helper()
	f := mustFormat(t, "ks")
	ls, err := ParseLegacyFormats("openai:sk-:^sk-[0-9a-f]{32}$", nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func(Format) (Format, error){
		func(f Format) (Format, error) { return f.WithLegacy(ls) },
		func(f Format) (Format, error) { return f.WithSpace("eu", 1) },
		func(f Format) (Format, error) { return f.WithSpace("us", 2) },
		func(f Format) (Format, error) { return f.WithSpace(longPrefix, 3) },
	}
	sign := func(f Format) (Format, error) { return f.WithSigned("kss", signingKeys(t)) }
	if signedFirst {
		steps = append([]func(Format) (Format, error){sign}, steps...)
	} else {
		steps = append(steps, sign)
	}
	for _, step := range steps {
		if f, err = step(f); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func mustGenerateIn(t testing.TB, f Format, space int, signed bool) Generated {
	t.Helper()
	g, err := f.GenerateIn(space, signed)
	if err != nil {
		t.Fatalf("GenerateIn(%d, %v): %v", space, signed, err)
	}
	return g
}

func TestGenerateInLocates(t *testing.T) {
	t.Parallel()
	for _, signedFirst := range []bool{true, false} {
		f := testSpaces(t, signedFirst)
		for _, tt := range []struct {
			space  int
			signed bool
			prefix string
			kind   Kind
		}{
			{0, false, "ks_", KindChecksum},
			{0, true, "kss_k2_", KindSigned},
			{1, false, "eu_", KindChecksum},
			{2, false, "us_", KindChecksum},
			{2, true, "us_k2_", KindSigned},
			{3, false, longPrefix + "_", KindChecksum},
			{3, true, longPrefix + "_k2_", KindSigned}, // the longest signed key but for the kid
		} {
			t.Run(strconv.FormatBool(signedFirst)+"/"+tt.prefix, func(t *testing.T) {
				g := mustGenerateIn(t, f, tt.space, tt.signed)
				tail := BodyLen + ChecksumLen
				if tt.signed {
					tail = SignedBodyLen + TagLen
				}
				if !strings.HasPrefix(g.Secret, tt.prefix) || len(g.Secret) != len(tt.prefix)+tail {
					t.Fatalf("key of %d bytes: wrong layout for %q", len(g.Secret), tt.prefix)
				}
				kind, space, err := f.Locate(g.Secret)
				if kind != tt.kind || space != tt.space || err != nil {
					t.Fatalf("Locate = %v, %d, %v; want %v, %d, nil", kind, space, err, tt.kind, tt.space)
				}
				if kind, err := f.Classify(g.Secret); kind != tt.kind || err != nil {
					t.Fatalf("Classify = %v, %v", kind, err)
				}
				if g.Hash != HashOf(g.Secret) {
					t.Fatal("hash is not SHA-256 of the secret")
				}
				own, _, _ := strings.Cut(g.Secret, "_")
				if want := own + "_..." + g.Secret[len(g.Secret)-4:]; g.Hint != want || f.Hint(g.Secret) != want {
					t.Fatalf("hint %q, want %q", g.Hint, want)
				}
			})
		}
		if kind, space, err := f.Locate("sk-0123456789abcdef0123456789abcdef"); kind != KindLegacy || space != 0 || err != nil {
			t.Errorf("a legacy key: %v, %d, %v", kind, space, err)
		}
	}
}

// A key is judged in the keyspace its prefix names. A checksum key's body
// moved under another prefix still passes there: the CRC covers only the
// body, and is no secret anyway. That is expected: the prefix tells the
// keyspace, the record found by the key's hash decides the rest. A signed
// key's tag covers its prefix, so a moved signed key fails.
func TestKeyMovedToAnotherPrefix(t *testing.T) {
	t.Parallel()
	f := testSpaces(t, false)
	eu := mustGenerateIn(t, f, 1, false).Secret
	usSigned := mustGenerateIn(t, f, 2, true).Secret
	defSigned := mustGenerateIn(t, f, 0, true).Secret
	move := func(key, to string) string { _, rest, _ := strings.Cut(key, "_"); return to + "_" + rest }
	for _, tt := range []struct {
		name  string
		key   string
		kind  Kind
		space int
		err   error
	}{
		{"checksum eu to us", move(eu, "us"), KindChecksum, 2, nil},
		{"checksum eu to default", move(eu, "ks"), KindChecksum, 0, nil},
		{"signed us to eu", move(usSigned, "eu"), KindSigned, 1, ErrSignature},
		{"signed us to long", move(usSigned, longPrefix), KindSigned, 3, ErrSignature},
		{"signed us to default", move(usSigned, "kss"), KindSigned, 0, ErrSignature},
		{"signed default to us", move(defSigned, "us"), KindSigned, 2, ErrSignature},
		{"signed us with unknown kid", "us_k9_" + usSigned[len("us_k2_"):], KindSigned, 2, ErrUnknownKid},
		{"signed us to a checksum prefix", move(usSigned, "ks"), KindChecksum, 0, ErrLength},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kind, space, err := f.Locate(tt.key)
			if kind != tt.kind || space != tt.space || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Locate = %v, %d, %v; want %v, %d, %v", kind, space, err, tt.kind, tt.space, tt.err)
			}
		})
	}
}

func TestLocateRefuses(t *testing.T) {
	t.Parallel()
	f := testSpaces(t, true)
	body := strings.Repeat("A", BodyLen+ChecksumLen)
	unsigned, err := mustFormat(t, "ks").WithSpace("eu", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		f     Format
		key   string
		kind  Kind
		space int
		err   error
	}{
		{"unknown prefix", f, "zz_" + body, KindUnknown, -1, ErrPrefix},
		{"a space prefix and more", f, "eux_" + body, KindUnknown, -1, ErrPrefix},
		{"a space prefix without underscore", f, "eu" + body, KindUnknown, -1, ErrPrefix},
		{"a prefix too long to be one", f, longPrefix + "z_" + body, KindUnknown, -1, ErrPrefix},
		{"leading underscore", f, "_" + body, KindUnknown, -1, ErrPrefix},
		{"empty", f, "", KindUnknown, -1, ErrEmpty},
		{"too long", f, strings.Repeat("a", MaxLegacyLen+1), KindUnknown, -1, ErrTooLong},
		{"bad checksum", f, "eu_" + body, KindChecksum, 1, ErrChecksum},
		{"short", f, "eu_" + body[1:], KindChecksum, 1, ErrLength},
		{"charset", f, "us_" + body[1:] + "-", KindChecksum, 2, ErrCharset},
		{"empty kid", f, "us__" + body[1:], KindChecksum, 2, ErrCharset},
		{"signed shape, bad tag", f, "us_k1_" + strings.Repeat("A", SignedBodyLen+TagLen), KindSigned, 2, ErrSignature},
		{"signed shape, short", f, "us_k1_" + body, KindSigned, 2, ErrLength},
		{"signed shape without signing keys", unsigned, "eu_k1_" + strings.Repeat("A", SignedBodyLen+TagLen), KindChecksum, 1, ErrLength},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kind, space, err := tt.f.Locate(tt.key)
			if kind != tt.kind || space != tt.space || !errors.Is(err, tt.err) {
				t.Fatalf("Locate = %v, %d, %v; want %v, %d, %v", kind, space, err, tt.kind, tt.space, tt.err)
			}
			if kind, err := tt.f.Classify(tt.key); kind != tt.kind || !errors.Is(err, tt.err) {
				t.Fatalf("Classify = %v, %v", kind, err)
			}
		})
	}
}

func TestWithSpaceRefuses(t *testing.T) {
	t.Parallel()
	ls, err := ParseLegacyFormats("old:old_:^old_[A-Z]{10}$;short:q:^q[0-9]+$", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := testSpaces(t, true)
	if f, err = f.WithLegacy(ls); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		prefix string
		space  int
		badPfx bool // CheckSpacePrefix refuses it too
	}{
		{"empty", "", 4, true},
		{"upper case", "EU", 4, true},
		{"underscore", "e_u", 4, true},
		{"too long", longPrefix + "z", 4, true},
		{"the checksum prefix", "ks", 4, true},
		{"the signed prefix", "kss", 4, true},
		{"another space's prefix", "us", 4, true},
		{"a legacy prefix with its underscore", "old", 4, true},
		{"starts with a legacy prefix", "qa", 4, true},
		{"space 0", "ap", 0, false},
		{"negative space", "ap", -1, false},
		{"a taken space", "ap", 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if g, err := f.WithSpace(tt.prefix, tt.space); err == nil {
				t.Fatalf("accepted; space %d is %q", tt.space, g.SpacePrefix(tt.space))
			}
			if err := f.CheckSpacePrefix(tt.prefix); (err != nil) != tt.badPfx {
				t.Fatalf("CheckSpacePrefix = %v", err)
			}
		})
	}
	if err := f.CheckSpacePrefix("ap"); err != nil {
		t.Errorf("CheckSpacePrefix(ap) = %v", err)
	}
	if _, err := f.WithSpace("ap", 4); err != nil {
		t.Errorf("WithSpace(ap, 4) = %v", err)
	}
	// The other formats, added after the keyspaces, check them too.
	spaced, err := mustFormat(t, "ks").WithSpace("eu", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spaced.WithSigned("eu", signingKeys(t)); err == nil {
		t.Error("WithSigned accepted a space's prefix")
	}
	if _, err := spaced.WithLegacy([]Legacy{{Name: "clash", Prefix: "eu_x", Pattern: regexp.MustCompile("^eu_x$")}}); err == nil {
		t.Error("WithLegacy accepted a prefix overlapping eu_")
	}
}

func TestWithSpaceCopies(t *testing.T) {
	t.Parallel()
	f0 := testSpaces(t, false)
	f1, err := f0.WithSpace("ap", 4)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := f1.WithSpace("sa", 5)
	if err != nil {
		t.Fatal(err)
	}
	f1b, err := f1.WithSpace("af", 5) // a branch beside f2
	if err != nil {
		t.Fatal(err)
	}
	key := func(p string) string { return p + "_" + mustGenerateIn(t, f0, 1, false).Secret[3:] }
	for _, tt := range []struct {
		name   string
		f      Format
		prefix string
		space  int // -1: unknown there
	}{
		{"f0 ap", f0, "ap", -1},
		{"f0 sa", f0, "sa", -1},
		{"f1 ap", f1, "ap", 4},
		{"f1 sa", f1, "sa", -1},
		{"f1 af", f1, "af", -1},
		{"f2 sa", f2, "sa", 5},
		{"f2 af", f2, "af", -1},
		{"f1b af", f1b, "af", 5},
		{"f1b sa", f1b, "sa", -1},
		{"f1b eu", f1b, "eu", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, space, _ := tt.f.Locate(key(tt.prefix)); space != tt.space {
				t.Fatalf("Locate: space %d, want %d", space, tt.space)
			}
			if got, want := tt.f.SpacePrefix(tt.space), tt.prefix; tt.space >= 0 && got != want {
				t.Fatalf("SpacePrefix(%d) = %q", tt.space, got)
			}
		})
	}
	if f0.SpacePrefix(0) != "ks" || f0.SpacePrefix(4) != "" || f2.SpacePrefix(9) != "" {
		t.Error("SpacePrefix: wrong answer for space 0 or an unknown space")
	}
}

func TestGenerateInRefuses(t *testing.T) {
	t.Parallel()
	spaced, err := mustFormat(t, "ks").WithSpace("eu", 1)
	if err != nil {
		t.Fatal(err)
	}
	full := testSpaces(t, true)
	for _, tt := range []struct {
		name   string
		f      Format
		space  int
		signed bool
	}{
		{"unknown space", full, 9, false},
		{"negative space", full, -1, false},
		{"signed without signing keys", spaced, 1, true},
		{"signed without signing keys, space 0", spaced, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.f.GenerateIn(tt.space, tt.signed); err == nil {
				t.Fatal("generated")
			}
		})
	}
}

func TestHintUsesTheKeysPrefix(t *testing.T) {
	t.Parallel()
	f := testSpaces(t, true)
	for key, want := range map[string]string{
		"eu_abcdefgh":        "eu_...efgh",
		longPrefix + "_wxyz": longPrefix + "_...wxyz",
		"kss_k1_abcd":        "kss_...abcd",
		"ks_abcd":            "ks_...abcd",
		"zz_abcd":            "ks_...abcd", // not a known prefix: as before
		"sk-0123":            "ks_...0123",
		"eu":                 "ks_...",
	} {
		if got := f.Hint(key); got != want {
			t.Errorf("Hint: %q, want %q", got, want)
		}
	}
}

func TestLocateDoesNotAllocate(t *testing.T) {
	f := testSpaces(t, true)
	keys := []string{
		mustGenerateIn(t, f, 0, false).Secret,
		mustGenerateIn(t, f, 2, false).Secret,
		"sk-0123456789abcdef0123456789abcdef",
		"zz_" + strings.Repeat("A", BodyLen+ChecksumLen),
	}
	if !raceEnabled {
		// Signed keys' MAC states are pooled (sync.Pool), which the race
		// detector empties at random: measured without it (go test without
		// -race, as BenchmarkLocate is).
		keys = append(keys, mustGenerateIn(t, f, 0, true).Secret, mustGenerateIn(t, f, 3, true).Secret)
	}
	for _, key := range keys {
		if n := testing.AllocsPerRun(100, func() { _, _, _ = f.Locate(key) }); n != 0 {
			t.Errorf("Locate of a %d-byte key: %v allocations", len(key), n)
		}
	}
}

// checkLocate is what the fuzz test asks of every string: Locate agrees with
// Classify, names a keyspace exactly when it knows the kind, and a key it
// accepts in a space is one a format with only that keyspace accepts.
func checkLocate(t *testing.T, f Format, alone map[int]Format, s string) {
	kind, space, err := f.Locate(s)
	ck, cerr := f.Classify(s)
	if kind != ck || !errors.Is(err, cerr) || (err == nil) != (cerr == nil) {
		t.Fatalf("Locate = %v, %v; Classify = %v, %v", kind, err, ck, cerr)
	}
	if (kind == KindUnknown) != (space == -1) || space < -1 {
		t.Fatalf("kind %v in space %d", kind, space)
	}
	if err != nil || space <= 0 {
		return
	}
	if !strings.HasPrefix(s, f.SpacePrefix(space)+"_") {
		t.Fatalf("located in space %d, prefix %q", space, f.SpacePrefix(space))
	}
	if k, err := alone[space*2+int(kind)].Classify(s); k != kind || err != nil {
		t.Fatalf("space %d accepted a %v key its own format finds %v, %v", space, kind, k, err)
	}
}

// aloneFormats maps space*2+kind to a format whose default keyspace is that
// space's prefix in that kind, for checkLocate.
func aloneFormats(t testing.TB, f Format) map[int]Format {
	out := map[int]Format{}
	for space := 1; f.SpacePrefix(space) != ""; space++ {
		p := f.SpacePrefix(space)
		out[space*2+int(KindChecksum)] = mustFormat(t, p)
		s, err := mustFormat(t, "other").WithSigned(p, signingKeys(t))
		if err != nil {
			t.Fatal(err)
		}
		out[space*2+int(KindSigned)] = s
	}
	return out
}

type benchCase struct {
	name string
	f    Format
	key  string
}

// benchCases: today's hot path with and without keyspaces configured, a
// key of the last of 100 keyspaces, and a prefix no format knows.
func benchCases(b *testing.B) []benchCase {
	plain := mustFormat(b, "ks")
	spaced, err := mustFormat(b, "ks").WithSigned("kss", signingKeys(b))
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		if spaced, err = spaced.WithSpace("s"+strconv.Itoa(i), i); err != nil {
			b.Fatal(err)
		}
	}
	def := mustGenerateIn(b, plain, 0, false).Secret
	return []benchCase{
		{"default/nospaces", plain, def},
		{"default/100spaces", spaced, def},
		{"space100/100spaces", spaced, mustGenerateIn(b, spaced, 100, false).Secret},
		{"unknown/100spaces", spaced, "zz_" + def[3:]},
	}
}

func BenchmarkLocate(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = c.f.Locate(c.key)
			}
		})
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.f.Classify(c.key)
			}
		})
	}
}
