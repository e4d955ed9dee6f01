package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
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
	// ErrExpiredStays: the key has expired, and an expired key's expiry
	// cannot change (it would bring the key back).
	ErrExpiredStays = errors.New("store: an expired key stays expired")
	// ErrRotatedExpiry: a rotated key's expiry may only move earlier.
	ErrRotatedExpiry = errors.New("store: a rotated key's expiry may only move earlier")
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
// ErrRevoked; a new expiry for an expired key is ErrExpiredStays, and for
// a rotated key one that is later or none is ErrRotatedExpiry. An update that changes nothing writes nothing and returns
// the key as it is (changed is false).
func (s *Store) UpdateKey(ctx context.Context, id uuid.UUID, u Update) (out Key, changed bool, err error) {
	err = s.inTx(ctx, func(tx *writeTx) error {
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
				next.ExpiresAt = storedTime(u.ExpiresAt) // compared as stored
			case FieldRateLimit:
				next.RateLimit = storedRate(u.RateLimit)
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
		if !timesEqual(old.ExpiresAt, next.ExpiresAt) {
			if err := s.expiryMayChange(ctx, tx, &old, next.ExpiresAt); err != nil {
				return err
			}
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

// expiryMayChange enforces, under old's row lock, what a new expiry may
// not do: bring back an expired key (database clock), or keep a rotated
// key alive longer than its rotation allowed (its expiry may only move
// earlier, so a revived or extended old key cannot outlive its grace).
func (s *Store) expiryMayChange(ctx context.Context, tx pgx.Tx, old *Key, next *time.Time) error {
	if old.ExpiresAt != nil {
		now, err := s.q.DBNow(ctx, tx)
		if err != nil {
			return fmt.Errorf("reading the clock: %w", err)
		}
		if !old.ExpiresAt.After(now) {
			return ErrExpiredStays
		}
	}
	if old.RotatedTo != uuid.Nil && (next == nil || (old.ExpiresAt != nil && next.After(*old.ExpiresAt))) {
		return ErrRotatedExpiry
	}
	return nil
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
// RotatedFrom set and sharing its budget (BudgetID); it is enabled even if
// the old key is disabled (disable, then rotate, is the answer to a leak).
// The old key gets an expiry at most Grace away and RotatedTo. A revoked
// key is ErrRevoked, a rotated one ErrRotated, an expired one ErrExpired.
// Both writes, their audit events (rotate on the old key, create on the
// new) and their NOTIFYs are one transaction.
func (s *Store) RotateKey(ctx context.Context, id uuid.UUID, r Rotation) (newKey, oldKey Key, err error) {
	err = s.inTx(ctx, func(tx *writeTx) error {
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
		nk.BudgetID = old.Budget() // one budget for the whole chain
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
