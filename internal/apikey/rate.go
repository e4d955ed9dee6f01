package apikey

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseRate reads a rate written limit/period, such as 1000/1m or 10/1s:
// the one reading of it for the service's settings and the command line.
// Its bounds are Valid's; the Limit's Burst is its Limit.
func ParseRate(s string) (RateLimit, error) {
	n, p, ok := strings.Cut(s, "/")
	limit, err1 := strconv.Atoi(strings.TrimSpace(n))
	period, err2 := time.ParseDuration(strings.TrimSpace(p))
	if !ok || err1 != nil || err2 != nil {
		return RateLimit{}, fmt.Errorf("must be limit/period such as 1000/1m or 10/1s, got %q", s)
	}
	l := RateLimit{Limit: limit, Period: period, Burst: limit}
	if err := l.Valid(); err != nil {
		return RateLimit{}, fmt.Errorf("%q: %w", s, err)
	}
	return l, nil
}

// FormatRate writes limit/period as ParseRate reads it, with the period's
// zero units left out (1m, not 1m0s).
func FormatRate(limit int64, period time.Duration) string {
	p := period.String()
	if strings.HasSuffix(p, "m0s") {
		p = strings.TrimSuffix(p, "0s")
	}
	if strings.HasSuffix(p, "h0m") {
		p = strings.TrimSuffix(p, "0m")
	}
	return fmt.Sprintf("%d/%s", limit, p)
}
