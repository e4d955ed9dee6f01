package apikey

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/keys"
)

// EventKind says what happened to a key.
type EventKind string

// Event kinds sent between replicas (the store's NOTIFY channel).
const (
	EventCreated EventKind = "created"
	EventRevoked EventKind = "revoked"
	// EventUpdated: a key's record changed (UpdateKey, or the old key of a
	// RotateKey); replicas drop what they cached of it.
	EventUpdated EventKind = "updated"
	// EventKeyspaces and EventCredentials: a keyspace or a credential was
	// created or changed; replicas read those (small) tables again. They
	// carry no hash.
	EventKeyspaces   EventKind = "keyspaces"
	EventCredentials EventKind = "credentials"
	// EventCredits: a subject's credits were set, added to or charged
	// (Subject); replicas give back their lease of them and ask again.
	EventCredits EventKind = "credits"
)

// Tenancy reports whether e is about keyspaces or credentials rather than
// one key.
func (e Event) Tenancy() bool { return e.Kind == EventKeyspaces || e.Kind == EventCredentials }

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
	// Subject is whose credits changed (EventCredits).
	Subject uuid.UUID
	// Keyspace is the key's keyspace when the event's source knows it (the
	// incremental sync); it never travels in a NOTIFY payload.
	Keyspace uuid.UUID
}

// Payload encodes e for NOTIFY: "<kind>:<hex hash>[:<unix micros>]".
func (e Event) Payload() string {
	if e.Tenancy() {
		return string(e.Kind)
	}
	if e.Kind == EventCredits {
		return string(e.Kind) + ":" + e.Subject.String()
	}
	p := string(e.Kind) + ":" + e.Hash.String()
	if !e.At.IsZero() {
		p += ":" + strconv.FormatInt(e.At.UnixMicro(), 10)
	}
	return p
}

// ParseEvent decodes a NOTIFY payload made by Payload.
func ParseEvent(payload string) (Event, error) {
	if k := EventKind(payload); k == EventKeyspaces || k == EventCredentials {
		return Event{Kind: k}, nil
	}
	kind, rest, ok := strings.Cut(payload, ":")
	if EventKind(kind) == EventCredits {
		id, err := uuid.Parse(rest)
		if err != nil || !ok {
			return Event{}, fmt.Errorf("store: malformed credits event %q", payload)
		}
		return Event{Kind: EventCredits, Subject: id}, nil
	}
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

// ChangeHandler receives what the LISTEN connection learns of changes to
// keys. Its methods are called from one goroutine.
type ChangeHandler interface {
	// Changed delivers an event sent by a replica (this one included: the
	// writer's own NOTIFY comes back to it too).
	Changed(e Event)
	// StreamLost: the connection is being (re)made; events sent until the
	// next CatchUp returns may be missed.
	StreamLost()
	// CatchUp runs each time LISTEN is in place on a new connection: it
	// reads what was missed meanwhile (an incremental sync). An error
	// leaves that to the handler's next sync.
	CatchUp(ctx context.Context) error
	// ListenError reports a connection problem or an unreadable payload,
	// for the log; the listener reconnects by itself.
	ListenError(err error)
}

// KeyChange is a key created, revoked or updated since a watermark.
type KeyChange struct {
	Hash       keys.Hash
	CreatedAt  time.Time
	RevokedAt  *time.Time
	UpdatedAt  *time.Time
	KeyspaceID uuid.UUID
}

// UseCursor is a position in the (last_used_at, id) order of keys, newest
// first; the zero UseCursor is the start.
type UseCursor struct {
	UsedAt time.Time
	ID     uuid.UUID
}

// ScanInfo describes a full read of the active keys.
type ScanInfo struct {
	// Watermark is the database time the read is consistent with: every
	// change committed after it is found by an incremental sync from it.
	Watermark time.Time
	// Estimate is how many keys the read may return, to size a filter
	// before reading: the planner's row estimate, or a count when the
	// table has never been analysed.
	Estimate int64
	// Position is how far the reading server had replayed the primary's
	// WAL before the read (a read replica's; on the primary, what it had
	// written).
	Position int64
}

// Snapshot is a filter built from a full read, stored for other replicas.
type Snapshot struct {
	ID        int64
	CreatedAt time.Time
	Watermark time.Time // see ScanInfo
	Keys      int64
	Capacity  int64
	FPRate    float64
	Filter    []byte // the filter's binary form
	// Records are memory mode's records of every active key (the
	// validator's own versioned, checksummed format), when the writer kept
	// them and the reader asked for them; HasRecords says whether the
	// snapshot holds them.
	Records    []byte
	HasRecords bool
}

// SnapshotInfo describes a stored snapshot without its filter.
type SnapshotInfo struct {
	ID         int64
	Watermark  time.Time
	Age        time.Duration // by the database clock
	Keys       int64
	HasRecords bool
}
