package store

import (
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

const cursorVersion = 1

// IsZero reports whether c is the start of the list.
func (c Cursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == uuid.Nil }

// Encode returns an opaque, URL-safe page token; the zero cursor encodes as "".
func (c Cursor) Encode() string {
	if c.IsZero() {
		return ""
	}
	var b [1 + 8 + 16]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(c.CreatedAt.UnixMicro()))
	copy(b[9:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a token made by Encode; "" is the zero cursor.
func DecodeCursor(token string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 25 || b[0] != cursorVersion {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC()
	copy(c.ID[:], b[9:])
	if c.IsZero() {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}
