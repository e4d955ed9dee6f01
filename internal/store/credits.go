package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Credits: one row per key budget or owner (subject). Every write that
// reads a row applies a refill that fell due (apikey.Refill.Due) first, in
// the same transaction, so a refill happens once, whichever replica or
// call comes first.

func creditsFromRow(r dbsqlc.Credit) apikey.Credits {
	c := apikey.Credits{Subject: r.SubjectID, Remaining: r.Remaining, PeriodStart: r.PeriodStart, NextRefillAt: r.NextRefillAt,
		Epoch: r.Epoch, UpdatedAt: r.UpdatedAt}
	if r.RefillAmount.Valid && r.RefillInterval.Valid {
		c.Refill = &apikey.Refill{Amount: r.RefillAmount.Int64, Interval: apikey.RefillInterval(r.RefillInterval.String),
			Day: int(r.RefillDay.Int16), Every: durationOf(r.RefillEvery)}
	}
	return c
}

// refilled applies to c the refill due at now, if any; it reports whether
// one was.
func refilled(c *apikey.Credits, now time.Time) bool {
	if c.Refill == nil || c.NextRefillAt == nil {
		return false
	}
	start, due := c.Refill.Due(c.PeriodStart, *c.NextRefillAt, now)
	if !due {
		return false
	}
	next := c.Refill.Next(start, start)
	c.Remaining = c.Refill.Refilled(c.Remaining)
	c.PeriodStart, c.NextRefillAt = start, &next
	c.Epoch++
	return true
}

// setCredits sets subject's credits in tx (nil: the subject has none any
// more), starting a new period and epoch, and notifies every replica.
func (s *Store) setCredits(ctx context.Context, tx *writeTx, subject uuid.UUID, c *apikey.CreditsSetting) error {
	if c == nil {
		if err := s.q.DeleteCredits(ctx, tx, subject); err != nil {
			return fmt.Errorf("removing credits: %w", err)
		}
	} else {
		now := time.Now().UTC().Truncate(time.Microsecond)
		p := dbsqlc.SetCreditsParams{SubjectID: subject, Remaining: c.Remaining, PeriodStart: now}
		if r := c.Refill; r != nil {
			next := r.Next(now, now)
			p.NextRefillAt = &next
			p.RefillAmount = pgtype.Int8{Int64: r.Amount, Valid: true}
			p.RefillInterval = pgtype.Text{String: string(r.Interval), Valid: true}
			p.RefillDay = pgtype.Int2{Int16: int16(r.Day), Valid: r.Day != 0}
			p.RefillEvery = interval(r.Every)
		}
		if err := s.q.SetCredits(ctx, tx, p); err != nil {
			return fmt.Errorf("setting credits: %w", err)
		}
	}
	return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventCredits, Subject: subject})
}

// GetCredits reads the credits of subjects (those without are absent), as
// they are at now (a refill due is applied to the answer, not written).
func (s *Store) GetCredits(ctx context.Context, subjects []uuid.UUID, now time.Time) (map[uuid.UUID]apikey.Credits, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := s.q.GetCreditsOf(ctx, conn, subjects)
	if err != nil {
		return nil, classify(fmt.Errorf("reading credits: %w", err))
	}
	out := make(map[uuid.UUID]apikey.Credits, len(rows))
	for _, r := range rows {
		c := creditsFromRow(r)
		refilled(&c, now)
		out[c.Subject] = c
	}
	return out, nil
}

// lockCredits reads subject's row FOR UPDATE in tx, with a due refill
// applied (written back by writeCredits).
func (s *Store) lockCredits(ctx context.Context, tx *writeTx, subject uuid.UUID, now time.Time) (apikey.Credits, error) {
	c, _, err := s.lockCreditsRefilled(ctx, tx, subject, now)
	return c, err
}

// lockCreditsRefilled is lockCredits, and whether a refill was applied.
func (s *Store) lockCreditsRefilled(ctx context.Context, tx *writeTx, subject uuid.UUID, now time.Time) (apikey.Credits, bool, error) {
	row, err := s.q.GetCreditsForUpdate(ctx, tx, subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return apikey.Credits{}, false, apikey.ErrNoCredits
	}
	if err != nil {
		return apikey.Credits{}, false, fmt.Errorf("reading credits: %w", err)
	}
	c := creditsFromRow(row)
	did := refilled(&c, now)
	return c, did, nil
}

func (s *Store) writeCredits(ctx context.Context, tx *writeTx, c apikey.Credits, now time.Time) error {
	err := s.q.WriteCredits(ctx, tx.deferred(), dbsqlc.WriteCreditsParams{SubjectID: c.Subject, Remaining: c.Remaining,
		PeriodStart: c.PeriodStart, NextRefillAt: c.NextRefillAt, Epoch: c.Epoch, UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("writing credits: %w", err)
	}
	return nil
}

// LeaseCredits grants a replica a lease of subject's credits. The rule:
// need is max(cost, 1); when fewer than need remain, nothing is granted
// (Granted 0) and nothing changes; otherwise the grant is ceil(remaining /
// 16), at least need and at most want, never more than remains, and
// remaining drops by it. Leases shrink as the remainder does.
func (s *Store) LeaseCredits(ctx context.Context, subject uuid.UUID, want, cost int64, now time.Time) (apikey.Lease, error) {
	var out apikey.Lease
	err := s.inTx(ctx, func(tx *writeTx) error {
		c, did, err := s.lockCreditsRefilled(ctx, tx, subject, now)
		if err != nil {
			return err
		}
		out = apikey.Lease{Remaining: c.Remaining, Epoch: c.Epoch, NextRefillAt: c.NextRefillAt}
		need := max(cost, 1)
		if c.Remaining >= need {
			g := min(max((c.Remaining+15)/16, need), max(want, need), c.Remaining)
			c.Remaining -= g
			out.Granted, out.Remaining = g, c.Remaining
		} else if !did {
			return nil // refused, and nothing to write
		}
		return s.writeCredits(ctx, tx, c, now)
	})
	return out, err
}

// ReturnCredits gives back the unused credits of a lease of epoch; a set
// or a refill since voided it (nothing is given back then).
func (s *Store) ReturnCredits(ctx context.Context, subject uuid.UUID, epoch, unused int64, now time.Time) error {
	if unused <= 0 {
		return nil
	}
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	err = s.q.ReturnCredits(ctx, conn, dbsqlc.ReturnCreditsParams{SubjectID: subject, Epoch: epoch, Unused: unused, UpdatedAt: now})
	return classify(err)
}

// claimCharge records requestID of caller with body in tx: a retry with
// the same body is a duplicate (nothing is to be done), another body is
// ErrChargeReused.
func (s *Store) claimCharge(ctx context.Context, tx *writeTx, caller string, requestID uuid.UUID, body []byte) (dup bool, err error) {
	if requestID == uuid.Nil {
		return false, nil
	}
	r, err := s.q.ClaimCreditRequest(ctx, tx, dbsqlc.ClaimCreditRequestParams{Caller: caller, RequestID: requestID, BodyHash: body})
	if err != nil {
		return false, fmt.Errorf("recording the request: %w", err)
	}
	if r.Fresh {
		return false, nil
	}
	if !bytes.Equal(r.BodyHash, body) {
		return false, apikey.ErrChargeReused
	}
	return true, nil
}

// AddCredits adds amount (negative: takes away) to subject's credits. With
// a requestID, a retry adds once (duplicate) and another body is
// ErrChargeReused; nothing is written then.
func (s *Store) AddCredits(ctx context.Context, subject uuid.UUID, amount int64, caller string, requestID uuid.UUID, body []byte, now time.Time) (apikey.Credits, bool, error) {
	var out apikey.Credits
	var dup bool
	err := s.inTx(ctx, func(tx *writeTx) error {
		var err error
		if dup, err = s.claimCharge(ctx, tx, caller, requestID, body); err != nil {
			return err
		}
		c, err := s.lockCredits(ctx, tx, subject, now)
		if err != nil {
			return err
		}
		out = c
		if dup {
			return nil
		}
		if n := c.Remaining + amount; n > apikey.MaxCredits || n < -apikey.MaxCredits {
			return apikey.ErrCreditsBounds
		}
		if amount < 0 && c.Remaining+amount < 0 {
			// Only a reported charge takes credits below zero.
			return apikey.ErrCreditsNegative
		}
		out.Remaining += amount
		if err := s.writeCredits(ctx, tx, out, now); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventCredits, Subject: subject})
	})
	if dup && err == nil {
		// The answer is the credits as they are, not a second addition.
		return out, true, nil
	}
	return out, dup, err
}

// ChargeCredits charges cost to each of subjects that has credits (they
// may go below zero: the only way they do), once per requestID.
func (s *Store) ChargeCredits(ctx context.Context, subjects []uuid.UUID, cost int64, caller string, requestID uuid.UUID, body []byte, now time.Time) (map[uuid.UUID]apikey.Credits, bool, error) {
	out := map[uuid.UUID]apikey.Credits{}
	var dup bool
	err := s.inTx(ctx, func(tx *writeTx) error {
		var err error
		if dup, err = s.claimCharge(ctx, tx, caller, requestID, body); err != nil {
			return err
		}
		for _, sub := range subjects {
			c, err := s.lockCredits(ctx, tx, sub, now)
			if errors.Is(err, apikey.ErrNoCredits) {
				continue
			}
			if err != nil {
				return err
			}
			if !dup {
				c.Remaining = max(c.Remaining-cost, -apikey.MaxCredits)
				if err := s.writeCredits(ctx, tx, c, now); err != nil {
					return err
				}
				// Leases out were taken from the pool and stand; only a
				// charge that takes the pool below zero makes replicas give
				// them back (so the key is refused everywhere). Telling them
				// of every charge would make each replica give back and lease
				// again on every ReportUsage.
				if c.Remaining < 0 {
					if err := s.notify(ctx, tx, apikey.Event{Kind: apikey.EventCredits, Subject: sub}); err != nil {
						return err
					}
				}
			}
			out[sub] = c
		}
		return nil
	})
	return out, dup, err
}

// DeleteCreditRequestsBefore forgets request ids older than t.
func (s *Store) DeleteCreditRequestsBefore(ctx context.Context, t time.Time) (int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	n, err := s.q.DeleteCreditRequestsBefore(ctx, conn, t)
	return n, classify(err)
}
