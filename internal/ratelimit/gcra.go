package ratelimit

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/keyservice/keyservice/internal/caller"
)

// gcra is a token bucket kept as GCRA (generic cell rate algorithm): one
// atomic "theoretical arrival time" instead of a mutex and floating-point
// token counts, so a caller's check is a load and a compare-and-swap. It
// allows burst calls at once and refills at rate per second, like
// golang.org/x/time/rate, with no double burst at a window edge.
type gcra struct {
	tat      atomic.Int64 // theoretical arrival time, ns on the limiter's clock
	interval int64        // ns per token (0: unlimited)
	tau      int64        // burst tolerance: (burst-1) * interval
}

func newGCRA(b caller.Budget) *gcra {
	k := &gcra{}
	if b.Rate > 0 && b.Rate < 1e9 {
		k.interval = int64(math.Ceil(1e9 / b.Rate))
	}
	// Saturate rather than overflow for huge burst ÷ rate (centuries).
	if burst := int64(max(b.Burst-1, 0)); k.interval > 0 && burst > math.MaxInt64/4/k.interval {
		k.tau = math.MaxInt64 / 4
	} else {
		k.tau = burst * k.interval
	}
	return k
}

// take spends one token at now, or returns how long until one is there.
func (k *gcra) take(now int64) (bool, time.Duration) {
	if k.interval == 0 {
		return true, 0 // a rate beyond a call per nanosecond: unlimited
	}
	for {
		old := k.tat.Load()
		tat := max(old, now)
		if tat-now > k.tau {
			return false, time.Duration(tat - now - k.tau)
		}
		if k.tat.CompareAndSwap(old, tat+k.interval) {
			return true, 0
		}
	}
}

// giveBack returns a token taken at now (the call turned out not to count);
// the bucket never holds more than its burst.
func (k *gcra) giveBack(now int64) {
	if k.interval == 0 {
		return
	}
	for {
		old := k.tat.Load()
		if old <= now {
			return // already full
		}
		if k.tat.CompareAndSwap(old, max(old-k.interval, now)) {
			return
		}
	}
}
