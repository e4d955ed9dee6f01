package apikey

import (
	"errors"
	"time"
)

// Lease is credits granted to one replica, to spend in memory.
type Lease struct {
	Granted int64
	// Remaining is what is left in the pool after the grant.
	Remaining int64
	// Epoch is the row's epoch: a set or a refill voids the lease.
	Epoch        int64
	NextRefillAt *time.Time
}

// Errors of credits.
var (
	// ErrNoCredits: the subject has no credits.
	ErrNoCredits = errors.New("no credits")
	// ErrChargeReused: a request_id already used with another body.
	ErrChargeReused = errors.New("request_id was already used with another request")
	// ErrCreditsBounds: the change would leave credits outside ±MaxCredits.
	ErrCreditsBounds = errors.New("credits would leave the bounds of ±10^15")
	// ErrCreditsNegative: taking credits away would leave fewer than 0.
	ErrCreditsNegative = errors.New("credits would go below zero")
)
