package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Owners: every replica reads them whole with the keyspaces (AllOwners), and
// a write to one sends EventKeyspaces so that every replica reads them
// again: there are few, and they change rarely.

// AllOwners reads every owner, oldest first, with whether it has credits.
func (s *Store) AllOwners(ctx context.Context) ([]apikey.Owner, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := s.q.AllOwners(ctx, conn)
	if err != nil {
		return nil, classify(fmt.Errorf("reading owners: %w", err))
	}
	out := make([]apikey.Owner, len(rows))
	for i, r := range rows {
		out[i] = ownerFromRow(dbsqlc.Owner{ID: r.ID, KeyspaceID: r.KeyspaceID, Name: r.Name, RateLimit: r.RateLimit,
			RatePeriod: r.RatePeriod, RateBurst: r.RateBurst, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
		out[i].HasCredits = r.HasCredits
	}
	return out, nil
}

// CreateOwner stores o with a new id and its credits (nil: none), audits
// and notifies.
func (s *Store) CreateOwner(ctx context.Context, o apikey.Owner, credits *apikey.CreditsSetting) (apikey.Owner, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return apikey.Owner{}, fmt.Errorf("making an owner id: %w", err)
	}
	var out apikey.Owner
	err = s.inTx(ctx, func(tx *writeTx) error {
		p := dbsqlc.InsertOwnerParams{ID: id, KeyspaceID: o.KeyspaceID, Name: o.Name}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(storedRate(o.RateLimit))
		row, err := s.q.InsertOwner(ctx, tx, p)
		if err != nil {
			return uniqueAs(err, "owner", "inserting owner")
		}
		out = ownerFromRow(row)
		changes := ownerDiff(&apikey.Owner{}, &out, credits)
		if credits != nil {
			if err := s.setCredits(ctx, tx, id, credits); err != nil {
				return err
			}
			out.HasCredits = true
		}
		if err := s.audit(ctx, tx, apikey.ActionCreate, ref{apikey.ResourceOwner, out.ID, out.KeyspaceID}, changes); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventKeyspaces})
	})
	return out, err
}

// UpdateOwner applies u to the owner with id, audits and notifies.
func (s *Store) UpdateOwner(ctx context.Context, id uuid.UUID, u apikey.OwnerUpdate) (apikey.Owner, error) {
	var out apikey.Owner
	err := s.inTx(ctx, func(tx *writeTx) error {
		row, err := s.q.GetOwnerForUpdate(ctx, tx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("owner %s: %w", id, apikey.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading owner: %w", err)
		}
		old := ownerFromRow(row)
		next := old
		var changes []apikey.Change
		for _, f := range u.Fields {
			switch f {
			case apikey.OwnerFieldRateLimit:
				next.RateLimit = storedRate(u.RateLimit)
			case apikey.OwnerFieldCredits:
				if err := s.setCredits(ctx, tx, id, u.Credits); err != nil {
					return err
				}
				changes = append(changes, apikey.Change{Field: apikey.OwnerFieldCredits, New: creditsOrNil(u.Credits)})
			}
		}
		changes = append(ownerDiff(&old, &next, nil), changes...)
		if !ratesEqual(old.RateLimit, next.RateLimit) {
			p := dbsqlc.UpdateOwnerParams{ID: id}
			p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(next.RateLimit)
			if row, err = s.q.UpdateOwner(ctx, tx, p); err != nil {
				return fmt.Errorf("updating owner: %w", err)
			}
		}
		out = ownerFromRow(row)
		if len(changes) == 0 {
			return nil
		}
		if err := s.audit(ctx, tx, apikey.ActionUpdate, ref{apikey.ResourceOwner, id, out.KeyspaceID}, changes); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventKeyspaces})
	})
	return out, err
}

func ownerFromRow(r dbsqlc.Owner) apikey.Owner {
	return apikey.Owner{ID: r.ID, KeyspaceID: r.KeyspaceID, Name: r.Name, RateLimit: rateOf(r.RateLimit, r.RatePeriod, r.RateBurst),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// ownerDiff lists the fields that differ between a and b, and the credits
// set (when set is not nil) for a new owner.
func ownerDiff(a, b *apikey.Owner, set *apikey.CreditsSetting) []apikey.Change {
	var out []apikey.Change
	if a.Name != b.Name {
		out = append(out, apikey.Change{Field: "name", Old: textOrNil(a.Name), New: textOrNil(b.Name)})
	}
	if !ratesEqual(a.RateLimit, b.RateLimit) {
		out = append(out, apikey.Change{Field: apikey.OwnerFieldRateLimit, Old: rateOrNil(a.RateLimit), New: rateOrNil(b.RateLimit)})
	}
	if set != nil {
		out = append(out, apikey.Change{Field: apikey.OwnerFieldCredits, New: creditsOrNil(set)})
	}
	return out
}

func boolOrNil(b bool) any {
	if !b {
		return nil
	}
	return true
}

// creditsOrNil is a credits setting as the audit trail shows it.
func creditsOrNil(c *apikey.CreditsSetting) any {
	if c == nil {
		return nil
	}
	m := map[string]any{"remaining": c.Remaining}
	if r := c.Refill; r != nil {
		rm := map[string]any{"amount": r.Amount, "interval": string(r.Interval)}
		if r.Day != 0 {
			rm["day_of_month"] = r.Day
		}
		if r.Every != 0 {
			rm["every"] = r.Every.String()
		}
		m["refill"] = rm
	}
	return m
}
