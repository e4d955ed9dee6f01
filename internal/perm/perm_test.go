package perm

import (
	"slices"
	"testing"
)

func TestParseRoundTrips(t *testing.T) {
	for p := range count {
		s, err := Parse([]string{p.String()})
		if err != nil || s != Of(p) {
			t.Fatalf("Parse(%q) = %v, %v; want %v", p.String(), s, err, Of(p))
		}
	}
	if got := All.Names(); !slices.Equal(got, names[:]) {
		t.Fatalf("All.Names() = %v", got)
	}
	if _, err := Parse([]string{"keys.delete"}); err == nil {
		t.Fatal("an unknown permission parsed")
	}
}

func TestWithin(t *testing.T) {
	read := Of(KeysRead, AuditRead)
	if !read.Within(All) || All.Within(read) || !Of().Within(read) || Of(KeysCreate).Within(read) {
		t.Fatal("Within disagrees with set inclusion")
	}
}

func TestParseKnownDropsWhatItDoesNotKnow(t *testing.T) {
	s, unknown := ParseKnown([]string{"keys.read", "billing.read", "keys.validate"})
	if s != Of(KeysRead, KeysValidate) || len(unknown) != 1 || unknown[0] != "billing.read" {
		t.Fatalf("ParseKnown = %v, %v", s, unknown)
	}
}
