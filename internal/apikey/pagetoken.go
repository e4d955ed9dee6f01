package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Cursor is a position in the (created_at, id) order of keys.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// Errors of Decode.
var (
	// ErrBadCursor: a page token that this service did not make.
	ErrBadCursor = errors.New("malformed page token")
	// ErrCursorOtherList: a page token made for another list.
	ErrCursorOtherList = errors.New("page token of another list")
	// ErrCursorOtherFilters: a page token made for the same list with
	// other filters.
	ErrCursorOtherFilters = errors.New("page token of other filters")
)

// List names the list a page token is made for.
type List byte

// Lists with page tokens.
const (
	ListKeys        List = 1
	ListAuditEvents List = 2
	ListKeyspaces   List = 3
	ListCredentials List = 4
	ListUsage       List = 5
	ListOwners      List = 6
)

func (l List) String() string {
	switch l {
	case ListKeys:
		return "ListKeys"
	case ListAuditEvents:
		return "ListAuditEvents"
	case ListKeyspaces:
		return "ListKeyspaces"
	case ListUsage:
		return "GetUsage"
	case ListOwners:
		return "ListOwners"
	case ListCredentials:
		return "ListCredentials"
	}
	return "an unknown list"
}

// Page says what a page token is for: the list, and the filters of the
// request that returned it (in a fixed order per list; "" for a filter not
// given). A token works only for the same list and filters, so it can
// never continue another list or another selection with a silently wrong
// page.
type Page struct {
	List    List
	Filters []string
}

// digest is the first 8 bytes of the SHA-256 of p's filters (each length
// prefixed, so ("ab","") and ("a","b") differ). Within a signed token, 8
// bytes are enough: only this service makes tokens.
func (p Page) digest() [8]byte {
	h := sha256.New()
	var n [4]byte
	for _, f := range p.Filters {
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var out [8]byte
	copy(out[:], h.Sum(nil))
	return out
}

// cursorVersion 3 names the list and its filters; 2 did not.
const cursorVersion = 3

// Bounds a decoded cursor must fall within (defence in depth: a token
// carries an HMAC, so only this service can have made it).
var (
	minCursorTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// ListEnd is where a newest-first walk starts: after every key a cursor
// can name.
var ListEnd = Cursor{CreatedAt: maxCursorTime, ID: uuid.Max}

// IsZero reports whether c is the start of the list.
func (c Cursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == uuid.Nil }

// Before reports whether c comes before (at, id) in the oldest-first order
// of a list; the zero Cursor comes before everything.
func (c Cursor) Before(at time.Time, id uuid.UUID) bool {
	if c.IsZero() {
		return true
	}
	if !c.CreatedAt.Equal(at) {
		return c.CreatedAt.Before(at)
	}
	return bytes.Compare(c.ID[:], id[:]) < 0
}

// CursorCodec turns cursors into page tokens and back. A token is
// base64url(version, list, digest of the filters, created_at in µs, id,
// HMAC-SHA-256 of those, first 16 bytes): opaque to clients, and a token
// that was altered or made elsewhere is refused before anything is read
// from it.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec signing with secret; every replica must
// use the same secret for a token from one to work on another.
func NewCursorCodec(secret []byte) CursorCodec {
	return CursorCodec{key: append([]byte(nil), secret...)}
}

const (
	cursorPayload = 1 + 1 + 8 + 8 + 16
	cursorMAC     = 16
)

func (cc CursorCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, cc.key)
	m.Write(payload)
	return m.Sum(nil)[:cursorMAC]
}

// Encode returns the page token of c for p; the zero cursor encodes as "".
func (cc CursorCodec) Encode(p Page, c Cursor) string {
	if c.IsZero() {
		return ""
	}
	var b [cursorPayload + cursorMAC]byte
	b[0], b[1] = cursorVersion, byte(p.List)
	d := p.digest()
	copy(b[2:10], d[:])
	binary.BigEndian.PutUint64(b[10:18], uint64(c.CreatedAt.UnixMicro()))
	copy(b[18:cursorPayload], c.ID[:])
	copy(b[cursorPayload:], cc.mac(b[:cursorPayload]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Decode parses a token made by Encode with the same secret for p; "" is
// the zero cursor. A token made for another list is ErrCursorOtherList,
// for other filters ErrCursorOtherFilters; anything else that is not such
// a token is ErrBadCursor.
func (cc CursorCodec) Decode(p Page, token string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token) // Strict: no second spelling of a token
	if err != nil || len(b) != cursorPayload+cursorMAC || b[0] != cursorVersion {
		return Cursor{}, ErrBadCursor
	}
	if !hmac.Equal(b[cursorPayload:], cc.mac(b[:cursorPayload])) {
		return Cursor{}, ErrBadCursor
	}
	if List(b[1]) != p.List {
		return Cursor{}, ErrCursorOtherList
	}
	if d := p.digest(); !hmac.Equal(b[2:10], d[:]) {
		return Cursor{}, ErrCursorOtherFilters
	}
	var c Cursor
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[10:18]))).UTC()
	copy(c.ID[:], b[18:cursorPayload])
	if c.ID == uuid.Nil || c.CreatedAt.Before(minCursorTime) || c.CreatedAt.After(maxCursorTime) {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}
