package validate

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/testsignal"
)

// ForceFilterMaybe swaps in a filter that answers "maybe" for every hash,
// so tests can drive plausible-but-unknown keys to the lookup step.
func ForceFilterMaybe(v *Validator) {
	g := newGeneration(1, 0.5)
	for i := uint(0); i < g.f.Cap(); i++ {
		g.f.BitSet().Set(i)
	}
	v.filter.startRebuild()
	v.filter.swap(g)
}

// EventsApplied counts events applied from source ("local", "notify", "sync").
func EventsApplied(v *Validator, kind, source string) float64 {
	return testutil.ToFloat64(v.metrics.events.WithLabelValues(kind, source))
}

// FilterMayContain exposes the filter's answer for h.
func FilterMayContain(v *Validator, h keys.Hash) bool {
	maybe, _ := v.filter.test(&h)
	return maybe
}

// Rebuild runs a rebuild now, and waits for the snapshot it writes.
func Rebuild(v *Validator, ctx context.Context) error {
	err := v.rebuild(ctx)
	v.waitWrites()
	return err
}

// FlushUsage writes buffered last-use times now.
var FlushUsage = (*Validator).flushUsage

// CachedAt is when h's positive entry was fetched (zero when none).
func CachedAt(v *Validator, h keys.Hash) time.Time {
	if e, ok := v.pos.GetEntryQuietly(h); ok {
		return e.Value.fetched
	}
	return time.Time{}
}

// LookupRefusals counts lookups refused for reason ("deadline", "queue_full", "store_down").
func LookupRefusals(v *Validator, reason string) float64 {
	i := map[string]int{"deadline": refusedDeadline, "queue_full": refusedQueueFull, "store_down": refusedStoreDown}[reason]
	return testutil.ToFloat64(v.metrics.lookupRefusals[i])
}

// Warm runs the warm start now.
var Warm = (*Validator).warm

// StatementsRunning is how many lookup statements are in flight or about
// to start.
func StatementsRunning(v *Validator) int {
	v.batch.mu.Lock()
	defer v.batch.mu.Unlock()
	return v.batch.running
}

// SetStatementEstimate overrides the batcher's estimate of a statement's time.
func SetStatementEstimate(v *Validator, d time.Duration) {
	v.batch.mu.Lock()
	v.batch.stmtTime = d
	v.batch.mu.Unlock()
}

// StreamDown reports whether the replica knows its LISTEN connection is down.
func StreamDown(v *Validator) bool { return v.streamDown() }

// InitSignals turns v's test signals on; call it before Run.
func InitSignals(v *Validator) {
	v.signals.loadFailed.Init()
	v.signals.streamUp.Init()
	v.signals.synced.Init()
	v.signals.refreshFailed.Init()
}

// TestSignals are v's test signals, for tests outside the package.
type TestSignals struct {
	LoadFailed, StreamUp, Synced, RefreshFailed testsignal.Signal
}

// Signals returns v's test signals (InitSignals first).
func Signals(v *Validator) TestSignals {
	s := &v.signals
	return TestSignals{LoadFailed: s.loadFailed, StreamUp: s.streamUp, Synced: s.synced, RefreshFailed: s.refreshFailed}
}

// FilterLoads counts v's loads by kind: "full" (the table was read),
// "snapshot" (loaded), "written" (snapshots written).
func FilterLoads(v *Validator, kind string) float64 {
	switch kind {
	case "full":
		return testutil.ToFloat64(v.metrics.fullReads)
	case "snapshot":
		return testutil.ToFloat64(v.metrics.snapshotLoads)
	case "written":
		v.waitWrites() // written after the replica is ready
		return testutil.ToFloat64(v.metrics.snapshotWrites)
	}
	return testutil.ToFloat64(v.metrics.snapshotsIgnored.WithLabelValues(kind))
}

// Sync runs an incremental sync now.
func Sync(v *Validator) error { return v.sync(context.Background()) }

// Mode is the replica's mode ("memory" or "filter").
func Mode(v *Validator) string { m, _ := v.Mode(); return m }

// SetMemoryBudget sets the memory budget in bytes (before Run).
func SetMemoryBudget(v *Validator, bytes int64) { v.budget.Store(bytes) }

// InMemory reports whether memory mode holds h's record.
func InMemory(v *Validator, h keys.Hash) bool { return v.res.has(h) }

// MemoryRecord is h's record in memory mode, without answering for it.
func MemoryRecord(v *Validator, h keys.Hash) (apikey.Key, bool) { return v.res.get(&h) }
