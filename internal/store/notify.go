package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// EventKind says what happened to a key.
type EventKind string

// Event kinds sent on NotifyChannel.
const (
	EventCreated EventKind = "created"
	EventRevoked EventKind = "revoked"
	// EventUpdated: a key's record changed (UpdateKey, or the old key of a
	// RotateKey); replicas drop what they cached of it.
	EventUpdated EventKind = "updated"
)

// Event is one change to a key, as sent between replicas.
type Event struct {
	Kind EventKind
	Hash keys.Hash
	// At is revoked_at for EventRevoked and updated_at for EventUpdated
	// (microsecond precision).
	At time.Time
	// Key is the full record when the event is applied on the replica that
	// made the change; it never travels in a NOTIFY payload.
	Key *Key
}

// Payload encodes e for NOTIFY: "<kind>:<hex hash>[:<unix micros>]".
func (e Event) Payload() string {
	p := string(e.Kind) + ":" + e.Hash.String()
	if !e.At.IsZero() {
		p += ":" + strconv.FormatInt(e.At.UnixMicro(), 10)
	}
	return p
}

// ParseEvent decodes a NOTIFY payload made by Payload.
func ParseEvent(payload string) (Event, error) {
	kind, rest, ok := strings.Cut(payload, ":")
	hexHash, at, hasAt := strings.Cut(rest, ":")
	var e Event
	if !ok || hex.DecodedLen(len(hexHash)) != len(e.Hash) {
		return Event{}, fmt.Errorf("store: malformed event %q", payload)
	}
	if hasAt {
		us, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return Event{}, fmt.Errorf("store: malformed event time %q", at)
		}
		e.At = time.UnixMicro(us).UTC()
	}
	if _, err := hex.Decode(e.Hash[:], []byte(hexHash)); err != nil {
		return Event{}, fmt.Errorf("store: malformed event hash: %w", err)
	}
	switch k := EventKind(kind); k {
	case EventCreated, EventRevoked, EventUpdated:
		e.Kind = k
	default:
		return Event{}, fmt.Errorf("store: unknown event kind %q", kind)
	}
	return e, nil
}

// notify queues an event in tx; Postgres delivers it only if tx commits.
func (s *Store) notify(ctx context.Context, tx *writeTx, e Event) error {
	p := dbsqlc.NotifyParams{Channel: NotifyChannel, Payload: e.Payload()}
	if err := s.q.Notify(ctx, tx.deferred(), p); err != nil {
		return fmt.Errorf("sending notify: %w", err)
	}
	return nil
}
