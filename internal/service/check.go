package service

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// Limits on request fields.
const (
	maxNameLen      = 200
	maxOwnerLen     = 200
	maxScopes       = 64
	maxScopeLen     = 128
	maxMetadata     = 32
	maxMetaKeyLen   = 64
	maxMetaValueLen = 1024
	defaultPageSize = 100
	maxPageSize     = 1000
)

// validScope reports whether sc is 1 to maxScopeLen characters of the
// scope alphabet: letters, digits and : . _ - / * (no comma, so the scopes
// joined with commas in X-Key-Scopes stay unambiguous; no space or control
// character, so they are safe in any header).
func validScope(sc string) bool {
	if sc == "" || len(sc) > maxScopeLen {
		return false
	}
	for i := 0; i < len(sc); i++ {
		switch c := sc[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':' || c == '.' || c == '_' || c == '-' || c == '/' || c == '*':
		default:
			return false
		}
	}
	return true
}

// checkText requires 1 to max printable characters (see checkChars).
func checkText(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return invalid(field, "is required")
	}
	return checkOptionalText(field, v, max)
}

// checkOptionalText allows at most max printable characters, or none.
func checkOptionalText(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return invalid(field, "must be at most %d characters, got %d", max, n)
	}
	return checkChars(field, v)
}

// printableRule is what checkChars asks of free text, as a message says it.
const printableRule = "only printable characters (no control or format characters such as U+202E or U+200B, no line or paragraph separators)"

// checkChars is the one rule of every free-text field (name, owner,
// metadata keys and values, the owner and actor filters, an imported
// key's hint): printable characters only (unicode.IsPrint, space being the
// only space allowed). What is stored is shown to admins and copied into
// headers: nothing in it may reverse the text after it on screen (U+202E),
// hide (U+200B), or break a line (U+2028).
func checkChars(field, v string) error {
	if strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return invalid(field, "must contain %s", printableRule)
	}
	return nil
}

// Bounds of an imported key's hint (keyservice makes its own: Format.Hint,
// the prefix, "_..." and the last 4 characters of the key). A hint is shown
// to every admin who lists keys, so it may show no more of a key than a
// prefix: a run of letters and digits longer than the longest prefix is a
// key's body.
const (
	maxHintLen = 40
	maxHintRun = keys.MaxPrefixLen
)

// CheckHint checks the hint of an imported key: free text (checkChars) of
// at most maxHintLen characters with no run of more than maxHintRun
// letters and digits. Every hint keyservice makes passes it. It cannot
// know whether a short hint is a whole key of some other format: keyservice
// import also refuses a hint that is the secret of any key it knows.
func CheckHint(hint string) error {
	if err := checkOptionalText("hint", hint, maxHintLen); err != nil {
		return err
	}
	run := 0
	for _, r := range hint {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			run = 0
			continue
		}
		if run++; run > maxHintRun {
			return invalid("hint", "has more than %d letters and digits in a row, as a key has: a hint is a short part of the key, such as its prefix and last four characters (ks_...Ab12)", maxHintRun)
		}
	}
	return nil
}

// pageSize checks a list's page_size: 0 is the default, at most
// maxPageSize.
func pageSize(n int32) (int, error) {
	switch size := int(n); {
	case size < 0 || size > maxPageSize:
		return 0, invalid("page_size", "must be between 0 and %d, got %d", maxPageSize, size)
	case size == 0:
		return defaultPageSize, nil
	default:
		return size, nil
	}
}

// pageToken decodes the page_token of a request for p (its list and
// filters): a token of another list, or of the same list with other
// filters, is refused like a malformed one, never read as a position in
// this one.
func (s *Service) pageToken(p apikey.Page, token string) (apikey.Cursor, error) {
	c, err := s.cursors.Decode(p, token)
	switch {
	case errors.Is(err, apikey.ErrCursorOtherList):
		return c, invalid("page_token", "was issued for another list: pass the next_page_token of a previous %s response", p.List)
	case errors.Is(err, apikey.ErrCursorOtherFilters):
		return c, invalid("page_token", "was issued for other filters or another order: send it with the same filters (and newest_first) as the request that returned it, or start again without a page_token")
	case err != nil:
		return c, invalid("page_token", "is malformed; pass the next_page_token of a previous response")
	}
	return c, nil
}

func parseID(s string) (uuid.UUID, error) { return parseIDField("id", s) }

func parseIDField(field, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, invalid(field, "is required")
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalid(field, "must be a UUID such as 0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a")
	}
	return id, nil
}
