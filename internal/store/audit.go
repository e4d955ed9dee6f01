package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// The audit trail: every admin write records who made it, in which call,
// and the fields it changed, in the write's own transaction.

// ref names what a write changed, for its audit event.
type ref struct {
	typ      string
	id       uuid.UUID
	keyspace uuid.UUID // uuid.Nil for credentials
}

func keyRef(k *apikey.Key) ref { return ref{apikey.ResourceKey, k.ID, k.KeyspaceID} }

// audit records a write in tx.
func (s *Store) audit(ctx context.Context, tx *writeTx, action string, r ref, changes []apikey.Change) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("making an audit event id: %w", err)
	}
	if changes == nil {
		changes = []apikey.Change{}
	}
	js, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encoding audit changes: %w", err)
	}
	a := apikey.AuditOf(ctx)
	p := dbsqlc.InsertAuditEventParams{
		ID: id, Actor: a.Actor, Action: action, RequestID: a.RequestID, Changes: js,
		ResourceType: r.typ, ResourceID: nullUUID(r.id), KeyspaceID: nullUUID(r.keyspace),
	}
	if r.typ == apikey.ResourceKey {
		p.KeyID = nullUUID(r.id)
	}
	if err := s.q.InsertAuditEvent(ctx, tx.deferred(), p); err != nil {
		return fmt.Errorf("recording audit event: %w", err)
	}
	return nil
}

// ListAuditEvents returns up to q.Limit events after q.After, newest first,
// and the cursor of the next page (zero when there is none).
func (s *Store) ListAuditEvents(ctx context.Context, q apikey.AuditQuery) ([]apikey.AuditEvent, apikey.Cursor, error) {
	if q.Limit <= 0 {
		return nil, apikey.Cursor{}, errors.New("store: list limit must be positive")
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, apikey.Cursor{}, err
	}
	defer conn.Release()
	before := q.After
	if before.IsZero() {
		before = apikey.Cursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	rows, err := s.q.ListAuditEvents(ctx, conn, dbsqlc.ListAuditEventsParams{
		ByKey: q.KeyID != uuid.Nil, KeyID: q.KeyID, Actor: q.Actor,
		ByKeyspace: q.Keyspaces != nil, KeyspaceIDs: nonNilIDs(q.Keyspaces),
		BeforeAt: before.CreatedAt, BeforeID: before.ID, PageLimit: int32(q.Limit + 1),
	})
	if err != nil {
		return nil, apikey.Cursor{}, classify(fmt.Errorf("listing audit events: %w", err))
	}
	var next apikey.Cursor
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		next = apikey.Cursor{CreatedAt: last.At, ID: last.ID}
	}
	out := make([]apikey.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = apikey.AuditEvent{ID: r.ID, At: r.At, Actor: r.Actor, Action: r.Action, RequestID: r.RequestID,
			ResourceType: r.ResourceType, KeyID: r.KeyID.Bytes, ResourceID: r.ResourceID.Bytes, KeyspaceID: r.KeyspaceID.Bytes}
		if r.ResourceType == apikey.ResourceKey && !r.ResourceID.Valid {
			// Written before keyspaces (or by a replica of the release
			// before); its keyspace is its key's (the query reads it).
			out[i].ResourceID = out[i].KeyID
		}
		if err := json.Unmarshal(r.Changes, &out[i].Changes); err != nil {
			return nil, apikey.Cursor{}, fmt.Errorf("store: decoding audit event %s: %w", r.ID, err)
		}
	}
	return out, next, nil
}

// createdChanges lists the fields a new key was created with.
func createdChanges(k apikey.Key) []apikey.Change {
	return diff(&apikey.Key{Enabled: k.Enabled}, &k)
}

// diff lists the API-visible fields that differ between a and b, in a
// fixed order. Ids, hashes and secrets are never part of it, except the
// ids of a rotation's other key.
func diff(a, b *apikey.Key) []apikey.Change {
	var out []apikey.Change
	add := func(field string, old, new any) { out = append(out, apikey.Change{Field: field, Old: old, New: new}) }
	if a.Name != b.Name {
		add(apikey.FieldName, textOrNil(a.Name), textOrNil(b.Name))
	}
	if a.Owner != b.Owner {
		add("owner", textOrNil(a.Owner), textOrNil(b.Owner))
	}
	if !slices.Equal(a.Scopes, b.Scopes) {
		add(apikey.FieldScopes, listOrNil(a.Scopes), listOrNil(b.Scopes))
	}
	if !mapsEqual(a.Metadata, b.Metadata) {
		add(apikey.FieldMetadata, mapOrNil(a.Metadata), mapOrNil(b.Metadata))
	}
	if !timesEqual(a.ExpiresAt, b.ExpiresAt) {
		add(apikey.FieldExpiresAt, timeOrNil(a.ExpiresAt), timeOrNil(b.ExpiresAt))
	}
	if !ratesEqual(a.RateLimit, b.RateLimit) {
		add(apikey.FieldRateLimit, rateOrNil(a.RateLimit), rateOrNil(b.RateLimit))
	}
	if a.Enabled != b.Enabled {
		add(apikey.FieldEnabled, a.Enabled, b.Enabled)
	}
	if !slices.Equal(a.AllowedCIDRs, b.AllowedCIDRs) {
		add(apikey.FieldAllowedCIDRs, listOrNil(cidrStrings(a.AllowedCIDRs)), listOrNil(cidrStrings(b.AllowedCIDRs)))
	}
	if a.RotatedFrom != b.RotatedFrom {
		add("rotated_from", idOrNil(a.RotatedFrom), idOrNil(b.RotatedFrom))
	}
	if a.RotatedTo != b.RotatedTo {
		add("rotated_to", idOrNil(a.RotatedTo), idOrNil(b.RotatedTo))
	}
	return out
}

func textOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func listOrNil(l []string) any {
	if len(l) == 0 {
		return nil
	}
	return l
}

func mapOrNil(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func idOrNil(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id.String()
}

func rateOrNil(r *apikey.RateLimit) any {
	if r == nil {
		return nil
	}
	// The period as the API's JSON writes a Duration ("60s").
	return map[string]any{"limit": r.Limit, "period": strconv.FormatFloat(r.Period.Seconds(), 'f', -1, 64) + "s", "burst": r.Burst}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func ratesEqual(a, b *apikey.RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
