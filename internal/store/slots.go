package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// A server (or pooler) that is out of connection slots refuses a new
// connection with SQLSTATE 53300 ("sorry, too many clients already") while
// every connection the pool already holds can still run statements. The
// pool would fail the acquire that tried to grow; slots turns that into a
// wait for one of the pool's own connections, within the caller's
// deadline, and stops the pool from asking the server again until a
// backoff has passed (one attempt per backoff, not one per acquire). The
// first connection the server accepts again ends the episode.
//
// The episode is logged three ways only: when it starts, every
// slotReportEvery while it goes on (with counts), and when it ends.

// ErrNoSlot means the server had no connection slot for a new connection
// and none of the pool's connections came free within the deadline. It
// wraps ErrUnavailable where it reaches callers.
var ErrNoSlot = errors.New("the database has no connection slot free and every open connection stayed busy")

// errConnectBackoff is what BeforeConnect answers while the pool must not
// ask the server for a new connection (it refused one moments ago).
var errConnectBackoff = errors.New("not opening a connection: the database refused one for want of a slot; waiting for an open connection")

const (
	slotBackoffMin  = 50 * time.Millisecond
	slotBackoffMax  = 5 * time.Second
	slotReportEvery = 10 * time.Second
)

// noSlot reports whether err is a refused connection for want of a slot:
// PostgreSQL's 53300 (max_connections, reserved slots, a role's or a
// database's CONNECTION LIMIT), PgBouncer's max_client_conn, and poolers
// that answer with PostgreSQL's words; or this pool backing off after one.
func noSlot(err error) bool {
	if errors.Is(err, errConnectBackoff) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	if pgErr.Code == "53300" { // too_many_connections
		return true
	}
	msg := strings.ToLower(pgErr.Message)
	for _, s := range []string{"too many clients", "too many connections", "no more connections allowed", "max_client_conn", "max client connections"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// slots tracks the episodes in which the pool could not grow.
type slots struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time

	blocked atomic.Bool // an episode is on

	mu          sync.Mutex
	released    chan struct{} // closed and replaced when a connection goes back
	nextConnect time.Time     // no connection attempt before this
	backoff     time.Duration
	started     time.Time
	lastReport  time.Time
	waits       int64 // in this episode
	refusals    int64
	connRefused int64

	waitsTotal, refusalsTotal, connRefusedTotal prometheus.Counter
	blockedGauge                                prometheus.GaugeFunc
}

func newSlots(log *slog.Logger) *slots {
	s := &slots{log: log, now: time.Now, released: make(chan struct{})}
	s.waitsTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_db_slot_waits_total",
		Help: "Acquires that waited for one of the pool's open connections because the database had no slot for a new one."})
	s.refusalsTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_db_slot_refusals_total",
		Help: "Acquires that waited so and got no connection within their deadline (answered UNAVAILABLE)."})
	s.connRefusedTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_db_slot_connects_refused_total",
		Help: "New connections the database refused for want of a slot (SQLSTATE 53300 or a pooler's equivalent)."})
	s.blockedGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyservice_db_pool_growth_blocked",
		Help: "1 while the pool cannot grow because the database has no connection slot, else 0."},
		func() float64 {
			if s.blocked.Load() {
				return 1
			}
			return 0
		})
	return s
}

// Collectors returns the episode metrics for registration.
func (s *slots) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.waitsTotal, s.refusalsTotal, s.connRefusedTotal, s.blockedGauge}
}

// beforeConnect is the pool's BeforeConnect hook: while an episode is on,
// at most one connection attempt per backoff reaches the server.
func (s *slots) beforeConnect(context.Context, *pgx.ConnConfig) error {
	if !s.blocked.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.blocked.Load() && now.Before(s.nextConnect) {
		return errConnectBackoff
	}
	// This attempt probes; the next waits a full backoff whatever it gets.
	s.nextConnect = now.Add(s.backoff)
	return nil
}

// afterConnect is the pool's AfterConnect hook: the server accepted a new
// connection, so the episode (if any) is over.
func (s *slots) afterConnect(context.Context, *pgx.Conn) error {
	if !s.blocked.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.blocked.Load() {
		return nil
	}
	s.blocked.Store(false)
	s.log.Info("database connection slots: the pool can grow again",
		"lasted", s.now().Sub(s.started).Round(time.Millisecond), "waits", s.waits, "refused", s.refusals, "connects_refused", s.connRefused)
	s.wakeLocked() // waiters may now open a connection
	return nil
}

// refused records that the server refused a connection for want of a slot
// (err is that refusal, or the pool's own backoff).
func (s *slots) refused(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, errConnectBackoff) {
		return // nothing reached the server
	}
	s.connRefusedTotal.Inc()
	now := s.now()
	if !s.blocked.Load() {
		s.blocked.Store(true)
		s.started, s.lastReport = now, now
		s.waits, s.refusals, s.connRefused = 0, 0, 0
		s.backoff = slotBackoffMin
		s.log.Warn("database connection slots: the server refused a new connection for want of a slot; waiting for the pool's open connections",
			"open", s.openConns(), "pool_max", s.poolMax(), "error", err)
	} else {
		s.backoff = min(2*s.backoff, slotBackoffMax)
	}
	s.connRefused++
	s.nextConnect = now.Add(s.backoff)
	s.reportLocked(now)
}

// wait blocks until a connection goes back to the pool, a new connection
// may be tried, or ctx ends.
func (s *slots) wait(ctx context.Context) error {
	s.mu.Lock()
	ch := s.released
	until := s.nextConnect.Sub(s.now())
	s.mu.Unlock()
	if !s.blocked.Load() {
		return nil // ended meanwhile: try again at once
	}
	t := time.NewTimer(max(until, time.Millisecond))
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waited counts an acquire that had to wait (once per acquire), and
// refusedWait one whose wait ended without a connection.
func (s *slots) waited() {
	s.waitsTotal.Inc()
	s.mu.Lock()
	s.waits++
	s.reportLocked(s.now())
	s.mu.Unlock()
}

func (s *slots) refusedWait() {
	s.refusalsTotal.Inc()
	s.mu.Lock()
	s.refusals++
	s.reportLocked(s.now())
	s.mu.Unlock()
}

// release is called after every connection goes back to the pool: it wakes
// waiters while an episode is on, and costs one atomic load otherwise.
func (s *slots) release() {
	if !s.blocked.Load() {
		return
	}
	s.mu.Lock()
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *slots) wakeLocked() {
	close(s.released)
	s.released = make(chan struct{})
}

func (s *slots) reportLocked(now time.Time) {
	if !s.blocked.Load() || now.Sub(s.lastReport) < slotReportEvery {
		return
	}
	s.lastReport = now
	s.log.Warn("database connection slots: the pool still cannot grow",
		"for", now.Sub(s.started).Round(time.Second), "waits", s.waits, "refused", s.refusals, "connects_refused", s.connRefused, "open", s.openConns())
}

func (s *slots) openConns() int32 {
	if s.pool == nil {
		return 0
	}
	return s.pool.Stat().TotalConns()
}

func (s *slots) poolMax() int32 {
	if s.pool == nil {
		return 0
	}
	return s.pool.Config().MaxConns
}

// PoolState says whether the pool could open the connections it wants:
// Blocked while the database has no slot for a new one, and Open against
// Min (the connections it keeps open at all times).
type PoolState struct {
	Blocked bool
	Open    int32
	Min     int32
}

// Detail is a sentence for /readyz, empty when nothing is wrong.
func (p PoolState) Detail() string {
	switch {
	case p.Blocked:
		return fmt.Sprintf("the database has no connection slot for a new connection: answering on the %d open connections", p.Open)
	case p.Open < p.Min:
		return fmt.Sprintf("%d of the %d connections the pool keeps open are open", p.Open, p.Min)
	}
	return ""
}
