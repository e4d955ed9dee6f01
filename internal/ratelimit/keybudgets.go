package ratelimit

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/limits"
)

// NewKeyBudgets builds the per-key budget store from the settings: local
// (size budgets, each forgotten after CallerIdle unused), or, with a
// RedisURL, Redis shared by the replicas with the local store as its
// fallback. closeFn releases the Redis client (nothing to release when
// local). An error is the RedisURL's.
func NewKeyBudgets(l limits.Limits, size int, log *slog.Logger, reg prometheus.Registerer) (_ KeyBudgets, closeFn func(), err error) {
	local := NewLocal(size, l.CallerIdle, nil)
	if l.RedisURL == "" {
		return local, func() {}, nil
	}
	rdb, err := NewRedisClient(l.RedisURL, l.RedisTimeout)
	if err != nil {
		return nil, nil, err
	}
	return NewFallback(NewRedis(rdb, "keyservice:"), local, l.RedisTimeout, log, reg), func() { _ = rdb.Close() }, nil
}
