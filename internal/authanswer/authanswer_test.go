package authanswer

import "testing"

func TestHeaderSafeEncodesWhatAHeaderCannotCarry(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"acme":       "acme",
		"Zoë & Co":   "Zo%C3%AB & Co",
		"Acme, Inc.": "Acme%2C Inc.",
		" admin ":    "%20admin%20",
		"100%":       "100%25",
	} {
		if got := HeaderSafe(in); got != want {
			t.Errorf("HeaderSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
