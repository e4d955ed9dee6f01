package store

import (
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

// ErrBadCursor: a page token that this service did not make.
var ErrBadCursor = errors.New("malformed page token")

const cursorVersion = 2

// Bounds a decoded cursor must fall within (defence in depth: a token
// carries an HMAC, so only this service can have made it).
var (
	minCursorTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// IsZero reports whether c is the start of the list.
func (c Cursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == uuid.Nil }

// CursorCodec turns cursors into page tokens and back. A token is
// base64url(version, created_at in µs, id, HMAC-SHA-256 of those, first 16
// bytes): opaque to clients, and a token that was altered or made elsewhere
// is refused before anything is read from it.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec signing with secret; every replica must
// use the same secret for a token from one to work on another.
func NewCursorCodec(secret []byte) CursorCodec {
	return CursorCodec{key: append([]byte(nil), secret...)}
}

const cursorPayload = 1 + 8 + 16
const cursorMAC = 16

func (cc CursorCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, cc.key)
	m.Write(payload)
	return m.Sum(nil)[:cursorMAC]
}

// Encode returns the page token of c; the zero cursor encodes as "".
func (cc CursorCodec) Encode(c Cursor) string {
	if c.IsZero() {
		return ""
	}
	var b [cursorPayload + cursorMAC]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(c.CreatedAt.UnixMicro()))
	copy(b[9:cursorPayload], c.ID[:])
	copy(b[cursorPayload:], cc.mac(b[:cursorPayload]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Decode parses a token made by Encode with the same secret; "" is the
// zero cursor. Anything else is ErrBadCursor.
func (cc CursorCodec) Decode(token string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != cursorPayload+cursorMAC || b[0] != cursorVersion {
		return Cursor{}, ErrBadCursor
	}
	if !hmac.Equal(b[cursorPayload:], cc.mac(b[:cursorPayload])) {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC()
	copy(c.ID[:], b[9:cursorPayload])
	if c.ID == uuid.Nil || c.CreatedAt.Before(minCursorTime) || c.CreatedAt.After(maxCursorTime) {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}
