package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// EventKind says what happened to a key.
type EventKind string

// Event kinds sent on NotifyChannel.
const (
	EventCreated EventKind = "created"
	EventRevoked EventKind = "revoked"
)

// Event is one change to a key, as sent between replicas.
type Event struct {
	Kind EventKind
	Hash keys.Hash
}

// Payload encodes e for NOTIFY: "<kind>:<hex hash>".
func (e Event) Payload() string { return string(e.Kind) + ":" + e.Hash.String() }

// ParseEvent decodes a NOTIFY payload made by Payload.
func ParseEvent(payload string) (Event, error) {
	kind, hexHash, ok := strings.Cut(payload, ":")
	var e Event
	if !ok || hex.DecodedLen(len(hexHash)) != len(e.Hash) {
		return Event{}, fmt.Errorf("store: malformed event %q", payload)
	}
	if _, err := hex.Decode(e.Hash[:], []byte(hexHash)); err != nil {
		return Event{}, fmt.Errorf("store: malformed event hash: %w", err)
	}
	switch k := EventKind(kind); k {
	case EventCreated, EventRevoked:
		e.Kind = k
	default:
		return Event{}, fmt.Errorf("store: unknown event kind %q", kind)
	}
	return e, nil
}

// notify queues an event in tx; Postgres delivers it only if tx commits.
func (s *Store) notify(ctx context.Context, tx pgx.Tx, kind EventKind, h keys.Hash) error {
	p := dbsqlc.NotifyParams{Channel: NotifyChannel, Payload: Event{Kind: kind, Hash: h}.Payload()}
	if err := s.q.Notify(ctx, tx, p); err != nil {
		return fmt.Errorf("sending notify: %w", err)
	}
	return nil
}
