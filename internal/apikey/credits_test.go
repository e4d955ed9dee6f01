package apikey

import (
	"testing"
	"time"
)

func TestRefillValid(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Refill
		ok   bool
	}{
		{"daily", Refill{Amount: 1, Interval: RefillDaily}, true},
		{"monthly on the 28th", Refill{Amount: 1, Interval: RefillMonthly, Day: 28}, true},
		{"February 30th (day 30)", Refill{Amount: 1, Interval: RefillMonthly, Day: 30}, false},
		{"day 29 (not every month has it)", Refill{Amount: 1, Interval: RefillMonthly, Day: 29}, false},
		{"day 0", Refill{Amount: 1, Interval: RefillMonthly}, false},
		{"every 30s", Refill{Amount: 1, Interval: RefillEvery, Every: 30 * time.Second}, false},
		{"every hour", Refill{Amount: 1, Interval: RefillEvery, Every: time.Hour}, true},
		{"amount 0", Refill{Interval: RefillDaily}, false},
		{"absurd amount", Refill{Amount: MaxCredits + 1, Interval: RefillDaily}, false},
		{"no interval", Refill{Amount: 1}, false},
		{"daily with a day", Refill{Amount: 1, Interval: RefillDaily, Day: 3}, false},
	} {
		if err := c.r.Valid(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestRefillNextAndDue(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	start := at("2026-01-30T15:00:00Z")
	for _, c := range []struct {
		r          Refill
		t, next    string
		now, since string // Due(start, Next(start,start), now) = since
	}{
		{Refill{Interval: RefillDaily}, "2026-01-30T15:00:00Z", "2026-01-31T00:00:00Z", "2026-02-03T10:00:00Z", "2026-02-03T00:00:00Z"},
		{Refill{Interval: RefillMonthly, Day: 28}, "2026-01-30T15:00:00Z", "2026-02-28T00:00:00Z", "2026-05-01T00:00:00Z", "2026-04-28T00:00:00Z"},
		{Refill{Interval: RefillMonthly, Day: 1}, "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{Refill{Interval: RefillEvery, Every: 90 * time.Minute}, "2026-01-30T15:00:00Z", "2026-01-30T16:30:00Z", "2026-01-30T20:59:00Z", "2026-01-30T19:30:00Z"},
	} {
		if got := c.r.Next(start, at(c.t)); !got.Equal(at(c.next)) {
			t.Errorf("%+v: Next(%s) = %s, want %s", c.r, c.t, got, c.next)
		}
		first := c.r.Next(start, start)
		newStart, due := c.r.Due(start, first, at(c.now))
		if !due || !newStart.Equal(at(c.since)) {
			t.Errorf("%+v: Due at %s = %s %v, want %s (one refill, at the last boundary)", c.r, c.now, newStart, due, c.since)
		}
		if _, due := c.r.Due(start, first, first.Add(-time.Nanosecond)); due {
			t.Errorf("%+v: due before the boundary", c.r)
		}
	}
	r := Refill{Amount: 100, Interval: RefillDaily}
	if r.Refilled(30) != 100 || r.Refilled(-20) != 80 {
		t.Error("a refill sets the amount and carries a debt")
	}
}
