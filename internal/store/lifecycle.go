package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Errors of the key lifecycle, which callers tell apart.
var (
	// ErrRevoked: the key is revoked, and a revoked key cannot change.
	ErrRevoked = errors.New("store: key is revoked")
	// ErrRotated: the key was already rotated.
	ErrRotated = errors.New("store: key was already rotated")
	// ErrExpired: the key has expired, so it cannot be rotated.
	ErrExpired = errors.New("store: key has expired")
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

// lockKey reads the key with id and locks its row until tx ends, so two
// admin writes to one key run one after the other.
func (s *Store) lockKey(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Key, error) {
	row, err := s.q.GetKeyForUpdate(ctx, tx, id)
	if err != nil {
		return Key{}, fmt.Errorf("reading key: %w", err)
	}
	return fromRow(row)
}

// Field names of UpdateKey's mask.
const (
	FieldName         = "name"
	FieldScopes       = "scopes"
	FieldMetadata     = "metadata"
	FieldExpiresAt    = "expires_at"
	FieldRateLimit    = "rate_limit"
	FieldEnabled      = "enabled"
	FieldAllowedCIDRs = "allowed_cidrs"
)

// UpdatableFields are the fields UpdateKey may change.
var UpdatableFields = []string{FieldName, FieldScopes, FieldMetadata, FieldExpiresAt, FieldRateLimit, FieldEnabled, FieldAllowedCIDRs}

// Update is a change to some fields of a key: those named in Fields take
// the values given here (a nil ExpiresAt or RateLimit clears it).
type Update struct {
	Fields       []string
	Name         string
	Scopes       []string
	Metadata     map[string]string
	ExpiresAt    *time.Time
	RateLimit    *RateLimit
	Enabled      bool
	AllowedCIDRs []netip.Prefix
	// BeforeCommit, when set, is called with the updated record just
	// before the transaction commits (and its NOTIFY is sent).
	BeforeCommit func(Key)
}

// UpdateKey applies u to the key with id, records the fields that changed
// in the audit trail and notifies every replica. A revoked key is
// ErrRevoked. An update that changes nothing writes nothing and returns
// the key as it is (changed is false).
func (s *Store) UpdateKey(ctx context.Context, id uuid.UUID, u Update) (out Key, changed bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := s.lockKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if old.RevokedAt != nil {
			return ErrRevoked
		}
		next := old
		for _, f := range u.Fields {
			switch f {
			case FieldName:
				next.Name = u.Name
			case FieldScopes:
				next.Scopes = nonNilSlice(u.Scopes)
			case FieldMetadata:
				next.Metadata = u.Metadata
			case FieldExpiresAt:
				next.ExpiresAt = u.ExpiresAt
			case FieldRateLimit:
				next.RateLimit = u.RateLimit
			case FieldEnabled:
				next.Enabled = u.Enabled
			case FieldAllowedCIDRs:
				next.AllowedCIDRs = u.AllowedCIDRs
			default:
				return fmt.Errorf("store: %q cannot be updated", f)
			}
		}
		changes := diff(&old, &next)
		if len(changes) == 0 {
			out = old
			return s.answer(ctx, tx, out)
		}
		meta, err := json.Marshal(nonNilMap(next.Metadata))
		if err != nil {
			return fmt.Errorf("encoding metadata: %w", err)
		}
		p := dbsqlc.UpdateKeyParams{
			ID: id, Name: next.Name, Scopes: nonNilSlice(next.Scopes), Metadata: meta, ExpiresAt: next.ExpiresAt,
			Enabled: next.Enabled, AllowedCIDRs: cidrStrings(next.AllowedCIDRs),
		}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(next.RateLimit)
		row, err := s.q.UpdateKey(ctx, tx, p)
		if err != nil {
			return fmt.Errorf("updating key: %w", err)
		}
		if out, err = fromRow(row); err != nil {
			return err
		}
		action := ActionUpdate
		if len(changes) == 1 && changes[0].Field == FieldEnabled {
			action = ActionDisable
			if next.Enabled {
				action = ActionEnable
			}
		}
		if err := s.audit(ctx, tx, action, id, changes); err != nil {
			return err
		}
		changed = true
		if err := s.notify(ctx, tx, Event{Kind: EventUpdated, Hash: out.Hash, At: *out.UpdatedAt}); err != nil {
			return err
		}
		if err := s.answer(ctx, tx, out); err != nil {
			return err
		}
		if u.BeforeCommit != nil {
			u.BeforeCommit(out)
		}
		return nil
	})
	return out, changed, err
}

// Rotation is what RotateKey needs: the new secret's hash and hint, and
// how long the old key stays valid.
type Rotation struct {
	NewKey NewKey        // Hash and Hint; the rest is copied from the old key
	Grace  time.Duration // the old key expires at now+Grace (database clock), never later than it would
	// BeforeCommit, when set, is called with both records just before the
	// transaction commits (and its NOTIFYs are sent).
	BeforeCommit func(newKey, oldKey Key)
}

// RotateKey issues the successor of the key with id: a new key copying its
// name, owner, scopes, metadata, expiry, limit and allowed addresses, with
// RotatedFrom set; it is enabled even if the old key is disabled (disable,
// then rotate, is the answer to a leak). The old key gets an expiry at
// most Grace away and RotatedTo. A revoked key is ErrRevoked, a rotated
// one ErrRotated, an expired one ErrExpired. Both
// writes, their audit events (rotate on the old key, create on the new)
// and their NOTIFYs are one transaction.
func (s *Store) RotateKey(ctx context.Context, id uuid.UUID, r Rotation) (newKey, oldKey Key, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := s.lockKey(ctx, tx, id)
		if err != nil {
			return err
		}
		now, err := s.q.DBNow(ctx, tx)
		if err != nil {
			return fmt.Errorf("reading the clock: %w", err)
		}
		switch {
		case old.RevokedAt != nil:
			return ErrRevoked
		case old.RotatedTo != uuid.Nil:
			return ErrRotated
		case old.ExpiresAt != nil && !old.ExpiresAt.After(now):
			// Its successor would copy the expiry and be born expired.
			return ErrExpired
		}
		nk := r.NewKey
		nk.Name, nk.Owner, nk.Scopes, nk.Metadata = old.Name, old.Owner, old.Scopes, old.Metadata
		nk.ExpiresAt, nk.RateLimit, nk.AllowedCIDRs, nk.RotatedFrom = old.ExpiresAt, old.RateLimit, old.AllowedCIDRs, old.ID
		if newKey, err = s.insertKey(ctx, tx, nk); err != nil {
			return err
		}
		row, err := s.q.MarkRotated(ctx, tx, dbsqlc.MarkRotatedParams{
			ID:        id,
			Grace:     pgtype.Interval{Microseconds: r.Grace.Microseconds(), Valid: true},
			RotatedTo: nullUUID(newKey.ID),
		})
		if err != nil {
			return fmt.Errorf("marking key rotated: %w", err)
		}
		if oldKey, err = fromRow(row); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, ActionRotate, id, diff(&old, &oldKey)); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, ActionCreate, newKey.ID, createdChanges(newKey)); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, Event{Kind: EventUpdated, Hash: oldKey.Hash, At: *oldKey.UpdatedAt}); err != nil {
			return err
		}
		if err := s.answer(ctx, tx, newKey, oldKey); err != nil {
			return err
		}
		if r.BeforeCommit != nil {
			r.BeforeCommit(newKey, oldKey)
		}
		return nil
	})
	return newKey, oldKey, err
}

// AuditQuery selects a page of audit events.
type AuditQuery struct {
	KeyID uuid.UUID // uuid.Nil: every key
	Actor string    // empty: every actor
	After Cursor    // zero: from the newest
	Limit int
}

// ListAuditEvents returns up to q.Limit events after q.After, newest first,
// and the cursor of the next page (zero when there is none).
func (s *Store) ListAuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, Cursor, error) {
	if q.Limit <= 0 {
		return nil, Cursor{}, errors.New("store: list limit must be positive")
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, Cursor{}, err
	}
	defer conn.Release()
	before := q.After
	if before.IsZero() {
		before = Cursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	rows, err := s.q.ListAuditEvents(ctx, conn, dbsqlc.ListAuditEventsParams{
		ByKey: q.KeyID != uuid.Nil, KeyID: q.KeyID, Actor: q.Actor,
		BeforeAt: before.CreatedAt, BeforeID: before.ID, PageLimit: int32(q.Limit + 1),
	})
	if err != nil {
		return nil, Cursor{}, classify(fmt.Errorf("listing audit events: %w", err))
	}
	var next Cursor
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		next = Cursor{CreatedAt: last.At, ID: last.ID}
	}
	out := make([]AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = AuditEvent{ID: r.ID, At: r.At, Actor: r.Actor, Action: r.Action, KeyID: r.KeyID, RequestID: r.RequestID}
		if err := json.Unmarshal(r.Changes, &out[i].Changes); err != nil {
			return nil, Cursor{}, fmt.Errorf("store: decoding audit event %s: %w", r.ID, err)
		}
	}
	return out, next, nil
}

// createdChanges lists the fields a new key was created with.
func createdChanges(k Key) []Change {
	return diff(&Key{Enabled: k.Enabled}, &k)
}

// diff lists the API-visible fields that differ between a and b, in a
// fixed order. Ids, hashes and secrets are never part of it, except the
// ids of a rotation's other key.
func diff(a, b *Key) []Change {
	var out []Change
	add := func(field string, old, new any) { out = append(out, Change{Field: field, Old: old, New: new}) }
	if a.Name != b.Name {
		add(FieldName, textOrNil(a.Name), textOrNil(b.Name))
	}
	if a.Owner != b.Owner {
		add("owner", textOrNil(a.Owner), textOrNil(b.Owner))
	}
	if !slices.Equal(a.Scopes, b.Scopes) {
		add(FieldScopes, listOrNil(a.Scopes), listOrNil(b.Scopes))
	}
	if !mapsEqual(a.Metadata, b.Metadata) {
		add(FieldMetadata, mapOrNil(a.Metadata), mapOrNil(b.Metadata))
	}
	if !timesEqual(a.ExpiresAt, b.ExpiresAt) {
		add(FieldExpiresAt, timeOrNil(a.ExpiresAt), timeOrNil(b.ExpiresAt))
	}
	if !ratesEqual(a.RateLimit, b.RateLimit) {
		add(FieldRateLimit, rateOrNil(a.RateLimit), rateOrNil(b.RateLimit))
	}
	if a.Enabled != b.Enabled {
		add(FieldEnabled, a.Enabled, b.Enabled)
	}
	if !slices.Equal(a.AllowedCIDRs, b.AllowedCIDRs) {
		add(FieldAllowedCIDRs, listOrNil(cidrStrings(a.AllowedCIDRs)), listOrNil(cidrStrings(b.AllowedCIDRs)))
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

func rateOrNil(r *RateLimit) any {
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

func ratesEqual(a, b *RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
