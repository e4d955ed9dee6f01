package apikey

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// RefillInterval is when credits are refilled.
type RefillInterval string

// The refill intervals (as stored in credits.refill_interval).
const (
	RefillDaily   RefillInterval = "daily"   // every day at 00:00 UTC
	RefillMonthly RefillInterval = "monthly" // every month on Day at 00:00 UTC
	RefillEvery   RefillInterval = "every"   // every Every since the period began
)

// Bounds of credits and of one charge.
const (
	MaxCredits = 1_000_000_000_000_000 // 10^15: remaining, refill amounts, AddCredits
	MaxCharge  = 1_000_000_000_000     // 10^12: one ReportUsage
)

// Refill sets credits to Amount (plus any debt) at each boundary.
type Refill struct {
	Amount   int64
	Interval RefillInterval
	Day      int           // RefillMonthly: 1 to 28
	Every    time.Duration // RefillEvery: 1 minute to 366 days
}

// Valid explains why r cannot be used, or returns nil.
func (r Refill) Valid() error {
	if r.Amount < 1 || r.Amount > MaxCredits {
		return fmt.Errorf("amount must be between 1 and %d, got %d", int64(MaxCredits), r.Amount)
	}
	switch r.Interval {
	case RefillDaily:
		if r.Day != 0 || r.Every != 0 {
			return fmt.Errorf("a daily refill takes neither day_of_month nor every")
		}
	case RefillMonthly:
		if r.Day < 1 || r.Day > 28 {
			return fmt.Errorf("day_of_month must be between 1 and 28 (a day every month has), got %d", r.Day)
		}
		if r.Every != 0 {
			return fmt.Errorf("a monthly refill takes no every")
		}
	case RefillEvery:
		if r.Every < time.Minute || r.Every > 366*24*time.Hour {
			return fmt.Errorf("every must be between 1m and 366 days, got %s", r.Every)
		}
		if r.Day != 0 {
			return fmt.Errorf("an every refill takes no day_of_month")
		}
	default:
		return fmt.Errorf("interval must be daily, monthly or every, got %q", string(r.Interval))
	}
	return nil
}

// Next is the first refill boundary strictly after t, for a period that
// began at start (RefillEvery counts from start; the others are fixed
// times of the UTC calendar).
func (r Refill) Next(start, t time.Time) time.Time {
	t = t.UTC()
	switch r.Interval {
	case RefillDaily:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, 1)
	case RefillMonthly:
		d := time.Date(t.Year(), t.Month(), r.Day, 0, 0, 0, 0, time.UTC)
		if !d.After(t) {
			d = d.AddDate(0, 1, 0)
		}
		return d
	case RefillEvery:
		start = start.UTC()
		if t.Before(start) {
			return start.Add(r.Every)
		}
		n := t.Sub(start)/r.Every + 1
		return start.Add(n * r.Every)
	}
	return time.Time{}
}

// Due reports whether a refill boundary passed between a period that
// began at start (whose next refill was next) and now, and if so the start
// of the period now in force: the last boundary at or before now.
func (r Refill) Due(start, next, now time.Time) (newStart time.Time, due bool) {
	if next.IsZero() || now.Before(next) {
		return start, false
	}
	// The last boundary <= now: step from next while the following one has
	// passed too (a refill skipped for several periods is one refill).
	b := next
	for {
		n := r.Next(start, b)
		if n.After(now) {
			return b, true
		}
		b = n
	}
}

// Refilled is remaining after a refill to amount: unused credits expire,
// a debt (remaining below zero, from reported usage) is carried.
func (r Refill) Refilled(remaining int64) int64 {
	return r.Amount + min(remaining, 0)
}

// CreditsSetting is what an admin sets: the credits remaining now and how
// they are refilled (nil: never).
type CreditsSetting struct {
	Remaining int64
	Refill    *Refill
}

// Valid explains why s cannot be used, or returns nil.
func (s CreditsSetting) Valid() error {
	if s.Remaining < 0 || s.Remaining > MaxCredits {
		return fmt.Errorf("remaining must be between 0 and %d, got %d", int64(MaxCredits), s.Remaining)
	}
	if s.Refill != nil {
		if err := s.Refill.Valid(); err != nil {
			return fmt.Errorf("refill: %w", err)
		}
	}
	return nil
}

// Credits is the stored state of a subject's credits.
type Credits struct {
	Subject      uuid.UUID // a key's budget id or an owner's id
	Remaining    int64
	Refill       *Refill
	PeriodStart  time.Time
	NextRefillAt *time.Time
	// Epoch changes when remaining is set or refilled: leases of an older
	// epoch are void.
	Epoch     int64
	UpdatedAt time.Time
}

// Owner gives the owner string of keys within a keyspace budgets of its
// own, shared by those keys.
type Owner struct {
	ID         uuid.UUID
	KeyspaceID uuid.UUID
	Name       string
	RateLimit  *RateLimit // nil: none
	// HasCredits: the owner's keys spend its credits (Credits, when read
	// with them).
	HasCredits bool
	Credits    *Credits
	CreatedAt  time.Time
	UpdatedAt  *time.Time
}

// OwnerRef names an owner as keys name it: their keyspace and owner string.
type OwnerRef struct {
	KeyspaceID uuid.UUID
	Name       string
}

// Ref is the name o's keys know it by.
func (o *Owner) Ref() OwnerRef { return OwnerRef{KeyspaceID: o.KeyspaceID, Name: o.Name} }

// Ref is the name of k's owner.
func (k *Key) OwnerRef() OwnerRef { return OwnerRef{KeyspaceID: k.KeyspaceID, Name: k.Owner} }

// Field names of UpdateOwner's mask.
const (
	OwnerFieldRateLimit = "rate_limit"
	OwnerFieldCredits   = "credits"
)

// OwnerUpdatableFields are the fields UpdateOwner may change.
var OwnerUpdatableFields = []string{OwnerFieldRateLimit, OwnerFieldCredits}

// OwnerUpdate is a change to some fields of an owner: those named in
// Fields take the values given here (nil clears).
type OwnerUpdate struct {
	Fields    []string
	RateLimit *RateLimit
	Credits   *CreditsSetting
}

// CreditStatus is the state of a subject's credits after a call asked for
// them: what the validation path answers.
type CreditStatus struct {
	Allowed bool
	// Remaining is what this replica knows may still be spent.
	Remaining    int64
	NextRefillAt time.Time // zero: no refill
	// Lease names the lease the call spent from (Refund gives back to it
	// only).
	Lease uint64
}
