// Package backoff is the one retry schedule of the service: capped
// exponential waits with jitter, so replicas that lose the database
// together do not all retry it in the same instant.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with "equal jitter": the n-th
// wait is drawn uniformly from [d/2, d], d = min(Min·2ⁿ, Max). The zero
// value waits 100 ms to 5 s. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	n        uint
}

// Next returns the next wait and advances the schedule.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	d := hi
	if b.n < 32 && lo<<b.n < hi && lo<<b.n > 0 {
		d = lo << b.n
	}
	b.n++
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts the schedule again from Min (after a success).
func (b *Backoff) Reset() { b.n = 0 }

// Sleep waits d, or until ctx ends; it reports whether the wait completed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter returns d spread by ±frac (0.1: ±10%), for periodic work that
// replicas started together should not do together.
func Jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}
