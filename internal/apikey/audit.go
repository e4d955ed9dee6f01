package apikey

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Actions recorded in the audit trail.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionRotate  = "rotate"
	ActionRevoke  = "revoke"
	ActionEnable  = "enable"
	ActionDisable = "disable"
)

// Audit says who makes a write and in which call; every admin write
// records it with the change.
type Audit struct {
	Actor     string
	RequestID string
	// Owner names whose request ids a write's request_id is among (and
	// whose kept answers it may read): a stored credential's id
	// ("cred:<uuid>"), so a later credential given a freed name reads none
	// of them; "" is the Actor (bootstrap tokens, as before).
	Owner string
}

// RequestOwner is whose request ids a's writes use.
func (a Audit) RequestOwner() string {
	if a.Owner != "" {
		return a.Owner
	}
	return a.Actor
}

// OwnerOf is the Audit.Owner of c's writes.
func OwnerOf(c *Credential) string {
	if c == nil || c.ID == uuid.Nil {
		return ""
	}
	return "cred:" + c.ID.String()
}

// SystemActor is recorded for writes whose context names no actor (tests,
// tools).
const SystemActor = "system"

type auditKey struct{}

// WithAudit makes the writes made with ctx record a.
func WithAudit(ctx context.Context, a Audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

// AuditOf is the Audit recorded in ctx by WithAudit, with SystemActor
// when it names no actor.
func AuditOf(ctx context.Context) Audit {
	a, _ := ctx.Value(auditKey{}).(Audit)
	if a.Actor == "" {
		a.Actor = SystemActor
	}
	return a
}

// Change is one field of a key before and after a write. Values are what
// the API shows (strings, lists, maps, times, numbers); never a secret or
// a hash.
type Change struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// AuditEvent is one recorded admin write.
type AuditEvent struct {
	ID        uuid.UUID
	At        time.Time
	Actor     string
	Action    string
	KeyID     uuid.UUID // uuid.Nil for a change to a keyspace or credential
	RequestID string
	Changes   []Change
	// ResourceType (ResourceKey, ResourceKeyspace, ResourceCredential) and
	// ResourceID name what changed; KeyspaceID its keyspace (uuid.Nil for
	// credentials).
	ResourceType string
	ResourceID   uuid.UUID
	KeyspaceID   uuid.UUID
}

// AuditQuery selects a page of audit events.
type AuditQuery struct {
	KeyID uuid.UUID // uuid.Nil: every key
	Actor string    // empty: every actor
	// Keyspaces, when not nil, keeps only events of these keyspaces (a
	// credential bound to keyspaces reads only theirs).
	Keyspaces []uuid.UUID
	After     Cursor // zero: from the newest
	Limit     int
}

// Request names an admin write so that retrying it is safe (AIP-155). A
// write made with a context that carries one (WithRequest) claims the
// request id, per actor, at the start of its transaction and records its
// answer in the same transaction: a crash or a lost COMMIT keeps both or
// neither. A retry within the window finds the record and gets *Replayed
// (or ErrRequestReused) instead of writing again; a concurrent retry waits
// for the first write's transaction, then finds its record.
type Request struct {
	ID       uuid.UUID
	Method   string        // the API method, part of what must match
	BodyHash []byte        // a hash of the request without its id
	Window   time.Duration // how long the record is honoured
	// Answer encodes the write's answer from the records it returns (for
	// RotateKey the new key, then the old one). It runs inside the write's
	// transaction; its bytes are stored as given, so a secret in them must
	// already be sealed.
	Answer func(recs ...Key) ([]byte, error)
}

type requestKey struct{}

// WithRequest makes the admin write made with ctx idempotent under r.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestOf is the request recorded in ctx by WithRequest (nil: none).
func RequestOf(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}
