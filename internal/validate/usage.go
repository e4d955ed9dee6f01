package validate

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// maxUsageEntries bounds the usage buffer between flushes; beyond it, uses
// are dropped (last_used_at is advisory) rather than growing memory.
const maxUsageEntries = 1 << 20

// usageBuffer collects last-use times so Validate never writes to the
// database: they are flushed in one statement per interval.
type usageBuffer struct {
	mu   sync.Mutex
	last map[uuid.UUID]time.Time
}

// touch records a use of p's key, at most once per flush interval per key,
// so the hot path takes the buffer's lock rarely.
func (v *Validator) touch(p *posEntry, now time.Time) {
	n := now.UnixNano()
	prev := p.touched.Load()
	if n-prev < int64(v.cfg.UsageFlushInterval) || !p.touched.CompareAndSwap(prev, n) {
		return
	}
	v.recordUse(p.key.ID, now)
}

// recordUse buffers a use of key id for the next flush.
func (v *Validator) recordUse(id uuid.UUID, now time.Time) {
	v.usage.mu.Lock()
	if v.usage.last == nil {
		v.usage.last = make(map[uuid.UUID]time.Time)
	}
	if len(v.usage.last) < maxUsageEntries {
		v.usage.last[id] = now
	}
	v.usage.mu.Unlock()
}

// flushUsage writes the buffered last-use times in one statement.
func (v *Validator) flushUsage(ctx context.Context) {
	v.usage.mu.Lock()
	batch := v.usage.last
	v.usage.last = nil
	v.usage.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ids := make([]uuid.UUID, 0, len(batch))
	at := make([]time.Time, 0, len(batch))
	for id, t := range batch {
		ids = append(ids, id)
		at = append(at, t)
	}
	if err := v.store.TouchLastUsed(ctx, ids, at); err != nil {
		v.metrics.syncErrors.WithLabelValues("usage_flush").Inc()
		v.log.Warn("could not record last use of keys; will retry", "keys", len(ids), "error", err)
		// Put them back unless newer uses arrived; bounded like touch.
		v.usage.mu.Lock()
		if v.usage.last == nil {
			v.usage.last = make(map[uuid.UUID]time.Time, len(batch))
		}
		for id, t := range batch {
			if cur, ok := v.usage.last[id]; (!ok || cur.Before(t)) && len(v.usage.last) < maxUsageEntries {
				v.usage.last[id] = t
			}
		}
		v.usage.mu.Unlock()
		return
	}
	v.metrics.usageFlushes.Inc()
}
