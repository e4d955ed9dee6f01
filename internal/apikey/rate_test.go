package apikey_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
)

// TestParseRate: one reading of limit/period, with Valid's bounds, and
// FormatRate writes what it reads back.
func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want apikey.RateLimit
		err  string
	}{
		{"100/1m", apikey.RateLimit{Limit: 100, Period: time.Minute, Burst: 100}, ""},
		{" 10 / 1s ", apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 10}, ""},
		{"1/24h", apikey.RateLimit{Limit: 1, Period: 24 * time.Hour, Burst: 1}, ""},
		{"0/1m", apikey.RateLimit{}, "limit must be between"},
		{"-5/1m", apikey.RateLimit{}, "limit must be between"},
		{"2000000000/1m", apikey.RateLimit{}, "limit must be between"},
		{"10/25h", apikey.RateLimit{}, "period must be between"},
		{"10/1us", apikey.RateLimit{}, "period must be between"},
		{"10/0s", apikey.RateLimit{}, "period must be between"},
		{"010/1m", apikey.RateLimit{Limit: 10, Period: time.Minute, Burst: 10}, ""}, // base 10, never octal
		{"100", apikey.RateLimit{}, "limit/period"},
		{"100 per minute", apikey.RateLimit{}, "limit/period"},
		{"x/1m", apikey.RateLimit{}, "limit/period"},
	} {
		got, err := apikey.ParseRate(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseRate(%q) error %v; want one mentioning %q", tc.in, err, tc.err)
		}
	}
	for _, tc := range []struct {
		limit  int64
		period time.Duration
		want   string
	}{{100, time.Minute, "100/1m"}, {5, time.Hour, "5/1h"}, {7, 90 * time.Second, "7/1m30s"}, {3, 500 * time.Millisecond, "3/500ms"}, {1, 24 * time.Hour, "1/24h"}} {
		s := apikey.FormatRate(tc.limit, tc.period)
		if s != tc.want {
			t.Errorf("FormatRate(%d, %s) = %q, want %q", tc.limit, tc.period, s, tc.want)
		}
		if l, err := apikey.ParseRate(s); err != nil || int64(l.Limit) != tc.limit || l.Period != tc.period {
			t.Errorf("ParseRate(FormatRate) = %+v, %v", l, err)
		}
	}
}
