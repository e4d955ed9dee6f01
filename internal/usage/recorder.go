// Package usage counts every Validate answer and every reported charge per
// key, minute and outcome code, in memory, and writes the counts in
// batches (store.WriteUsage: minutes, hours and days in one transaction):
// never a statement per call. A graceful shutdown (Close) writes what is
// held; a crash loses at most one flush interval. It also keeps the
// minutes' daily partitions ahead of time and applies the retention.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
)

// Store is where counts go (*store.Store).
type Store interface {
	WriteUsage(ctx context.Context, rows []apikey.UsageRow) error
	EnsureUsagePartitions(ctx context.Context, from, to time.Time) error
	PruneUsage(ctx context.Context, minutesBefore, hoursBefore, daysBefore time.Time) (int, int64, error)
}

// Config is what a Recorder needs.
type Config struct {
	Store Store
	// FlushEvery is how often counts are written (0: 10s).
	FlushEvery time.Duration
	// MaxEntries bounds what is held between flushes (0: 1<<20): beyond
	// it a flush starts early; beyond twice it, counts are dropped (and
	// counted in keyservice_usage_history_dropped_total).
	MaxEntries int
	// Retention of minutes, hours and days (0: 7, 90 and 800 days).
	MinuteRetention, HourRetention, DayRetention time.Duration
	Log                                          *slog.Logger
	Registry                                     prometheus.Registerer
	Now                                          func() time.Time
}

const shards = 64

type entryKey struct {
	minute int64 // unix minutes
	key    uuid.UUID
	code   int16
}

type entry struct {
	keyspace       uuid.UUID
	owner          string
	calls, credits int64
}

type shard struct {
	mu sync.Mutex
	m  map[entryKey]*entry
	_  [40]byte // keeps shards' locks on their own cache lines
}

// Recorder aggregates usage in memory until it is written.
type Recorder struct {
	cfg    Config
	shards [shards]shard
	mu     sync.Mutex // one flush at a time
	held   int64      // entries held (approximate, under shard locks)
	heldMu sync.Mutex
	early  chan struct{}
	m      struct {
		flushes, rows, errors, dropped prometheus.Counter
	}
}

// New returns a Recorder.
func New(cfg Config) *Recorder {
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 10 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1 << 20
	}
	if cfg.MinuteRetention <= 0 {
		cfg.MinuteRetention = 7 * 24 * time.Hour
	}
	if cfg.HourRetention <= 0 {
		cfg.HourRetention = 90 * 24 * time.Hour
	}
	if cfg.DayRetention <= 0 {
		cfg.DayRetention = 800 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, early: make(chan struct{}, 1)}
	for i := range r.shards {
		r.shards[i].m = map[entryKey]*entry{}
	}
	r.m.flushes = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_usage_history_flushes_total", Help: "Usage history batches written (minutes, hours and days in one transaction)."})
	r.m.rows = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_usage_history_rows_total", Help: "Usage rows (key, minute, code) written."})
	r.m.errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_usage_history_flush_errors_total", Help: "Usage batches that could not be written (kept and tried again)."})
	r.m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_usage_history_dropped_total", Help: "Usage counts dropped because too many were held (the database could not take them)."})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(r.m.flushes, r.m.rows, r.m.errors, r.m.dropped)
	}
	return r
}

// Record counts one Validate answer of key k with code, which spent
// credits.
func (r *Recorder) Record(k *apikey.Key, code outcome.Code, credits int64, now time.Time) {
	r.add(k.ID, k.KeyspaceID, k.Owner, int16(code), 1, credits, now.Unix()/60)
}

// RecordReport counts one charge reported for k (ReportUsage).
func (r *Recorder) RecordReport(k *apikey.Key, credits int64, now time.Time) {
	r.add(k.ID, k.KeyspaceID, k.Owner, 0, 1, credits, now.Unix()/60)
}

func (r *Recorder) add(id, keyspace uuid.UUID, owner string, code int16, calls, credits, minute int64) {
	s := &r.shards[id[15]%shards]
	k := entryKey{minute: minute, key: id, code: code}
	s.mu.Lock()
	if e, ok := s.m[k]; ok {
		e.calls += calls
		e.credits += credits
		s.mu.Unlock()
		return
	}
	s.m[k] = &entry{keyspace: keyspace, owner: owner, calls: calls, credits: credits}
	s.mu.Unlock()
	r.grew(1)
}

// grew counts new entries: past MaxEntries a flush starts early.
func (r *Recorder) grew(n int64) {
	r.heldMu.Lock()
	r.held += n
	over := r.held >= int64(r.cfg.MaxEntries)
	r.heldMu.Unlock()
	if over {
		select {
		case r.early <- struct{}{}:
		default:
		}
	}
}

// take empties the shards into rows.
func (r *Recorder) take() []apikey.UsageRow {
	var rows []apikey.UsageRow
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		m := s.m
		s.m = make(map[entryKey]*entry, len(m))
		s.mu.Unlock()
		for k, e := range m {
			rows = append(rows, apikey.UsageRow{Minute: time.Unix(k.minute*60, 0).UTC(), KeyID: k.key, Code: k.code,
				KeyspaceID: e.keyspace, Owner: e.owner, Calls: e.calls, Credits: e.credits})
		}
	}
	r.heldMu.Lock()
	r.held = 0
	r.heldMu.Unlock()
	return rows
}

// putBack merges rows of a failed flush into what is held, unless that
// would hold more than twice MaxEntries (then they are dropped, counted).
func (r *Recorder) putBack(rows []apikey.UsageRow) {
	r.heldMu.Lock()
	room := 2*int64(r.cfg.MaxEntries) - r.held
	r.heldMu.Unlock()
	var added int64
	for _, row := range rows {
		s := &r.shards[row.KeyID[15]%shards]
		k := entryKey{minute: row.Minute.Unix() / 60, key: row.KeyID, code: row.Code}
		s.mu.Lock()
		if e, ok := s.m[k]; ok {
			e.calls += row.Calls
			e.credits += row.Credits
		} else if added < room {
			s.m[k] = &entry{keyspace: row.KeyspaceID, owner: row.Owner, calls: row.Calls, credits: row.Credits}
			added++
		} else {
			r.m.dropped.Add(float64(row.Calls))
		}
		s.mu.Unlock()
	}
	r.grew(added)
}

// Flush writes what is held; on failure it is kept for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := r.take()
	if len(rows) == 0 {
		return nil
	}
	if err := r.cfg.Store.WriteUsage(ctx, rows); err != nil {
		r.m.errors.Inc()
		r.putBack(rows)
		return err
	}
	r.m.flushes.Inc()
	r.m.rows.Add(float64(len(rows)))
	return nil
}

// Maintain makes the minutes' partitions from yesterday to two days ahead
// and applies the retention.
func (r *Recorder) Maintain(ctx context.Context) error {
	now := r.cfg.Now().UTC()
	if err := r.cfg.Store.EnsureUsagePartitions(ctx, now.Add(-24*time.Hour), now.Add(48*time.Hour)); err != nil {
		return err
	}
	_, _, err := r.cfg.Store.PruneUsage(ctx, now.Add(-r.cfg.MinuteRetention), now.Add(-r.cfg.HourRetention), now.Add(-r.cfg.DayRetention))
	return err
}

// Run flushes every FlushEvery (and early when much is held) and runs the
// maintenance every hour, until ctx ends. Close writes the rest.
func (r *Recorder) Run(ctx context.Context) {
	if err := r.Maintain(ctx); err != nil && ctx.Err() == nil {
		r.cfg.Log.Warn("usage partitions and retention: will retry", "error", err)
	}
	flush := time.NewTicker(r.cfg.FlushEvery)
	defer flush.Stop()
	maintain := time.NewTicker(time.Hour)
	defer maintain.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
		case <-r.early:
		case <-maintain.C:
			if err := r.Maintain(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("usage partitions and retention: will retry", "error", err)
			}
			continue
		}
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Warn("could not write usage; kept for the next flush", "error", err)
		}
	}
}

// Close writes everything held (after the last call was counted).
func (r *Recorder) Close(ctx context.Context) error { return r.Flush(ctx) }
