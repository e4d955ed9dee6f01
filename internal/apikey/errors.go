package apikey

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Errors callers tell apart (with errors.Is). Anything else is an internal
// fault.
var (
	// ErrNotFound: no key matches.
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable: the answer needs the database, and it could not be
	// reached or did not answer in time (a transient outage: retry). The
	// store and the validation path both wrap it with what failed.
	ErrUnavailable = errors.New("database unavailable")
	// ErrCommitUnknown: the connection broke after COMMIT was sent, so the
	// write may or may not have been applied. It is an ErrUnavailable: the
	// caller retries, safely when it names the write with a request id.
	ErrCommitUnknown = fmt.Errorf("%w: the connection broke at COMMIT, the write may have been applied", ErrUnavailable)
)

// Errors of the key lifecycle, which callers tell apart.
var (
	// ErrRevoked: the key is revoked, and a revoked key cannot change.
	ErrRevoked = errors.New("store: key is revoked")
	// ErrRotated: the key was already rotated.
	ErrRotated = errors.New("store: key was already rotated")
	// ErrExpired: the key has expired, so it cannot be rotated.
	ErrExpired = errors.New("store: key has expired")
	// ErrExpiredStays: the key has expired, and an expired key's expiry
	// cannot change (it would bring the key back).
	ErrExpiredStays = errors.New("store: an expired key stays expired")
	// ErrRotatedExpiry: a rotated key's expiry may only move earlier.
	ErrRotatedExpiry = errors.New("store: a rotated key's expiry may only move earlier")
)

// ErrNoSlot means the server had no connection slot for a new connection
// and none of the pool's connections came free within the deadline. It
// reaches callers wrapped with ErrUnavailable.
var ErrNoSlot = errors.New("the database has no connection slot free and every open connection stayed busy")

// Replayed is what a write returns, as its error, when its request was
// already applied within the window: Answer is what was recorded then,
// KeyIDs the keys it returned (none for records from before they were
// kept). Nothing was written.
type Replayed struct {
	Answer []byte
	KeyIDs []uuid.UUID
}

func (*Replayed) Error() string { return "store: request already applied" }

// ErrRequestReused: the request id was already used within the window for
// another request (another method or body). Nothing was written.
var ErrRequestReused = errors.New("store: request id already used for a different request")

// ErrCorruptSnapshot: a stored snapshot does not match its checksum.
var ErrCorruptSnapshot = errors.New("store: snapshot does not match its checksum")

// ErrExists: a keyspace or credential with the same unique field (name,
// prefix) already exists. Nothing was written. The error's text names the
// field.
var ErrExists = errors.New("already exists")
