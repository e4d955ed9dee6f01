package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// lockKey reads the key with id and locks its row until tx ends, so two
// admin writes to one key run one after the other.
func (s *Store) lockKey(ctx context.Context, tx pgx.Tx, id uuid.UUID) (apikey.Key, error) {
	row, err := s.q.GetKeyForUpdate(ctx, tx, id)
	if err != nil {
		return apikey.Key{}, fmt.Errorf("reading key: %w", err)
	}
	return fromRow(row)
}

// UpdateKey applies u to the key with id, records the fields that changed
// in the audit trail and notifies every replica. A revoked key is
// ErrRevoked; a new expiry for an expired key is ErrExpiredStays, and for
// a rotated key one that is later or none is ErrRotatedExpiry. An update that changes nothing writes nothing and returns
// the key as it is (changed is false).
func (s *Store) UpdateKey(ctx context.Context, id uuid.UUID, u apikey.Update) (out apikey.Key, changed bool, err error) {
	err = s.inTx(ctx, func(tx *writeTx) error {
		old, err := s.lockKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if old.RevokedAt != nil {
			return apikey.ErrRevoked
		}
		next := old
		for _, f := range u.Fields {
			switch f {
			case apikey.FieldName:
				next.Name = u.Name
			case apikey.FieldScopes:
				next.Scopes = nonNilSlice(u.Scopes)
			case apikey.FieldMetadata:
				next.Metadata = u.Metadata
			case apikey.FieldExpiresAt:
				next.ExpiresAt = storedTime(u.ExpiresAt) // compared as stored
			case apikey.FieldRateLimit:
				next.RateLimit = storedRate(u.RateLimit)
			case apikey.FieldEnabled:
				next.Enabled = u.Enabled
			case apikey.FieldAllowedCIDRs:
				next.AllowedCIDRs = u.AllowedCIDRs
			case apikey.FieldCredits:
				next.Credits = u.Credits != nil
			default:
				return fmt.Errorf("store: %q cannot be updated", f)
			}
		}
		changes := diff(&old, &next)
		if slices.Contains(u.Fields, apikey.FieldCredits) {
			// Setting credits is a change even to the same values: it sets
			// what remains now.
			if err := s.setCredits(ctx, tx, old.Budget(), u.Credits); err != nil {
				return err
			}
			changes = append(changes, apikey.Change{Field: apikey.FieldCredits, Old: boolOrNil(old.Credits), New: creditsOrNil(u.Credits)})
		}
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
			Enabled: next.Enabled, AllowedCIDRs: cidrStrings(next.AllowedCIDRs), Credits: next.Credits,
		}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(next.RateLimit)
		row, err := s.q.UpdateKey(ctx, tx, p)
		if err != nil {
			return fmt.Errorf("updating key: %w", err)
		}
		if out, err = fromRow(row); err != nil {
			return err
		}
		action := apikey.ActionUpdate
		if len(changes) == 1 && changes[0].Field == apikey.FieldEnabled {
			action = apikey.ActionDisable
			if next.Enabled {
				action = apikey.ActionEnable
			}
		}
		if err := s.audit(ctx, tx, action, keyRef(&out), changes); err != nil {
			return err
		}
		changed = true
		if err := s.notify(ctx, tx, apikey.Event{Kind: apikey.EventUpdated, Hash: out.Hash, At: *out.UpdatedAt}); err != nil {
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
func (s *Store) expiryMayChange(ctx context.Context, tx pgx.Tx, old *apikey.Key, next *time.Time) error {
	if old.ExpiresAt != nil {
		now, err := s.q.DBNow(ctx, tx)
		if err != nil {
			return fmt.Errorf("reading the clock: %w", err)
		}
		if !old.ExpiresAt.After(now) {
			return apikey.ErrExpiredStays
		}
	}
	if old.RotatedTo != uuid.Nil && (next == nil || (old.ExpiresAt != nil && next.After(*old.ExpiresAt))) {
		return apikey.ErrRotatedExpiry
	}
	return nil
}

// RotateKey issues the successor of the key with id: a new key copying its
// name, owner, scopes, metadata, expiry, limit and allowed addresses, with
// RotatedFrom set and sharing its budget (BudgetID); it is enabled even if
// the old key is disabled (disable, then rotate, is the answer to a leak).
// The old key gets an expiry at most Grace away and RotatedTo. A revoked
// key is ErrRevoked, a rotated one ErrRotated, an expired one ErrExpired.
// Both writes, their audit events (rotate on the old key, create on the
// new) and their NOTIFYs are one transaction.
func (s *Store) RotateKey(ctx context.Context, id uuid.UUID, r apikey.Rotation) (newKey, oldKey apikey.Key, err error) {
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
			return apikey.ErrRevoked
		case old.RotatedTo != uuid.Nil:
			return apikey.ErrRotated
		case old.ExpiresAt != nil && !old.ExpiresAt.After(now):
			// Its successor would copy the expiry and be born expired.
			return apikey.ErrExpired
		}
		nk := r.NewKey
		nk.Name, nk.Owner, nk.Scopes, nk.Metadata = old.Name, old.Owner, old.Scopes, old.Metadata
		nk.ExpiresAt, nk.RateLimit, nk.AllowedCIDRs, nk.RotatedFrom = old.ExpiresAt, old.RateLimit, old.AllowedCIDRs, old.ID
		nk.BudgetID = old.Budget() // one budget for the whole chain
		nk.KeyspaceID = old.KeyspaceID
		nk.SharesCredits = old.Credits
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
		if err := s.audit(ctx, tx, apikey.ActionRotate, keyRef(&oldKey), diff(&old, &oldKey)); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, apikey.ActionCreate, keyRef(&newKey), createdChanges(newKey)); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, apikey.Event{Kind: apikey.EventUpdated, Hash: oldKey.Hash, At: *oldKey.UpdatedAt}); err != nil {
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
