package ratelimit

import "time"

// SetFallbackClock makes f read the time from now (tests).
func SetFallbackClock(f *Fallback, now func() time.Time) { f.now = now }
