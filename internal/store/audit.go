package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Audit says who makes a write and in which call; every admin write
// records it with the change.
type Audit struct {
	Actor     string
	RequestID string
}

// SystemActor is recorded for writes whose context names no actor (tests,
// tools).
const SystemActor = "system"

type auditKey struct{}

// WithAudit makes the writes made with ctx record a.
func WithAudit(ctx context.Context, a Audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

func auditOf(ctx context.Context) Audit {
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
	KeyID     uuid.UUID
	RequestID string
	Changes   []Change
}

// audit records a write in tx.
func (s *Store) audit(ctx context.Context, tx pgx.Tx, action string, keyID uuid.UUID, changes []Change) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("making an audit event id: %w", err)
	}
	if changes == nil {
		changes = []Change{}
	}
	js, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encoding audit changes: %w", err)
	}
	a := auditOf(ctx)
	err = s.q.InsertAuditEvent(ctx, tx, dbsqlc.InsertAuditEventParams{
		ID: id, Actor: a.Actor, Action: action, KeyID: keyID, RequestID: a.RequestID, Changes: js,
	})
	if err != nil {
		return fmt.Errorf("recording audit event: %w", err)
	}
	return nil
}
