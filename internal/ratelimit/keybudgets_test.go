package ratelimit_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/ratelimit"
)

// TestKeyBudgetsFollowTheSettings: without a Redis URL the budgets are
// local; with one, Redis falls back to them; a URL that is not Redis's is
// an error and builds nothing.
func TestKeyBudgetsFollowTheSettings(t *testing.T) {
	t.Parallel()
	l := limits.Limits{CallerIdle: time.Minute, RedisTimeout: 50 * time.Millisecond}
	kb, closeFn, err := ratelimit.NewKeyBudgets(l, 100, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	if _, ok := kb.(*ratelimit.Local); !ok {
		t.Errorf("no Redis URL: %T, want *ratelimit.Local", kb)
	}

	l.RedisURL = "redis://127.0.0.1:6379/0" // not dialled until a Take
	kb, closeFn, err = ratelimit.NewKeyBudgets(l, 100, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	if _, ok := kb.(*ratelimit.Fallback); !ok {
		t.Errorf("with a Redis URL: %T, want *ratelimit.Fallback", kb)
	}

	l.RedisURL = "http://127.0.0.1:6379"
	if kb, closeFn, err := ratelimit.NewKeyBudgets(l, 100, slog.New(slog.DiscardHandler), nil); err == nil || kb != nil || closeFn != nil {
		t.Errorf("http:// URL: %T (close func %t), err %v; want an error and nothing built", kb, closeFn != nil, err)
	}
}
