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

	"github.com/keyservice/keyservice/internal/apikey"
)

// A server (or pooler) that is out of connection slots refuses a new
// connection with SQLSTATE 53300 ("sorry, too many clients already") while
// every connection the pool already holds can still run statements. The
// pool would fail the acquire that tried to grow; slots turns that into a
// wait for one of the pool's own connections, within the caller's
// deadline. While such an episode lasts the pool opens no connection at
// all; one prober asks the server once per backoff (50 ms, doubling to
// 5 s, a connection it closes at once), so a full server sees no connect
// storm, and the first connection the server accepts ends the episode.
//
// The episode is logged three ways only: when it starts, every reportEvery
// while it goes on (with counts), and once it has been over for
// reportEvery (a refusal within that time resumes it silently, so a server
// at its limit that frees a slot now and then does not make a line each
// time).

// errConnectBackoff is what BeforeConnect answers while an episode lasts:
// the prober alone asks the server.
var errConnectBackoff = fmt.Errorf("%w: not opening a connection: the database has no slot free; waiting for an open connection", apikey.ErrUnavailable)

const (
	slotBackoffMin = 50 * time.Millisecond
	slotBackoffMax = 5 * time.Second
	// slotWaitMax bounds one wait between tries, for connections that go
	// back to the pool without passing conn.Release (the migrator's, a
	// ping pgxpool abandoned).
	slotWaitMax = 50 * time.Millisecond
)

// noSlot reports whether err is a refused connection for want of a slot:
// PostgreSQL's 53300 (max_connections, reserved slots, a role's or a
// database's CONNECTION LIMIT), PgBouncer's max_client_conn, and poolers
// that answer with PostgreSQL's words; or this pool holding back during an
// episode.
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
	pool        *pgxpool.Pool
	log         *slog.Logger
	now         func() time.Time
	reportEvery time.Duration
	// probe opens and closes one connection (nil error: the server had a
	// slot).
	probe func(context.Context) error

	blocked atomic.Bool // an episode is on

	mu          sync.Mutex
	released    chan struct{} // closed and replaced when a connection goes back
	backoff     time.Duration
	started     time.Time
	lastReport  time.Time
	ended       time.Time // when the last episode's prober got a connection
	logged      bool      // this episode's start line was written
	waits       int64     // in this episode
	refusals    int64
	connRefused int64

	waitsTotal, refusalsTotal, connRefusedTotal prometheus.Counter
	blockedGauge                                prometheus.GaugeFunc
}

func newSlots(log *slog.Logger) *slots {
	s := &slots{log: log, now: time.Now, reportEvery: 10 * time.Second, released: make(chan struct{})}
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

// collectors returns the episode metrics for registration.
func (s *slots) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.waitsTotal, s.refusalsTotal, s.connRefusedTotal, s.blockedGauge}
}

// beforeConnect is the pool's BeforeConnect hook: while an episode is on,
// the pool opens nothing (the prober asks the server).
func (s *slots) beforeConnect(context.Context, *pgx.ConnConfig) error {
	if s.blocked.Load() {
		return errConnectBackoff
	}
	return nil
}

// refused records that the server refused one of the pool's connections
// for want of a slot (err is that refusal, or the pool holding back).
func (s *slots) refused(err error) {
	if errors.Is(err, errConnectBackoff) {
		return // nothing reached the server
	}
	s.connRefusedTotal.Inc()
	s.mu.Lock()
	s.connRefused++
	if s.blocked.Load() {
		s.mu.Unlock()
		return
	}
	now := s.now()
	s.blocked.Store(true)
	s.backoff = slotBackoffMin
	start := s.ended.IsZero() || now.Sub(s.ended) >= s.reportEvery
	if start { // else: the last one ended moments ago; it goes on
		s.started, s.lastReport, s.logged = now, now, true
		s.waits, s.refusals, s.connRefused = 0, 0, 1
	}
	s.mu.Unlock()
	if start {
		s.log.Warn("database connection slots: the server refused a new connection for want of a slot; waiting for the pool's open connections",
			"open", s.openConns(), "pool_max", s.poolMax(), "error", err)
	}
	go s.runProber()
}

// runProber asks the server for a connection once per backoff until it
// gets one, then ends the episode.
func (s *slots) runProber() {
	for {
		s.mu.Lock()
		wait := s.backoff
		s.mu.Unlock()
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), slotBackoffMax)
		err := s.probe(ctx)
		cancel()
		if err == nil || !noSlot(err) {
			// Accepted (or failed for another reason, which is not this
			// episode's to handle: the pool's own attempts will say).
			s.end()
			return
		}
		s.connRefusedTotal.Inc()
		s.mu.Lock()
		s.connRefused++
		s.backoff = min(2*s.backoff, slotBackoffMax)
		line := s.reportLocked(s.now())
		s.mu.Unlock()
		line()
	}
}

// end lets the pool open connections again, wakes the waiters, and writes
// the end line once the episode has stayed over for reportEvery.
func (s *slots) end() {
	s.mu.Lock()
	now := s.now()
	s.ended = now
	s.blocked.Store(false)
	s.wakeLocked()
	s.mu.Unlock()
	time.AfterFunc(s.reportEvery, func() {
		s.mu.Lock()
		over := !s.blocked.Load() && s.ended.Equal(now) && s.logged
		if over {
			s.logged = false
		}
		lasted, waits, refusals, connRefused := now.Sub(s.started), s.waits, s.refusals, s.connRefused
		s.mu.Unlock()
		if over {
			s.log.Info("database connection slots: the pool can grow again",
				"lasted", lasted.Round(time.Millisecond), "waits", waits, "refused", refusals, "connects_refused", connRefused)
		}
	})
}

// releasedChan is closed when a connection next goes back to the pool (or
// the episode ends). Take it before trying to acquire, so a release
// between the try and the wait is not missed.
func (s *slots) releasedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released
}

// wait blocks until ch is closed, slotWaitMax passes, or ctx ends.
func (s *slots) wait(ctx context.Context, ch <-chan struct{}) error {
	if !s.blocked.Load() {
		return nil // ended meanwhile: try again at once
	}
	t := time.NewTimer(slotWaitMax)
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
	line := s.reportLocked(s.now())
	s.mu.Unlock()
	line()
}

func (s *slots) refusedWait() {
	s.refusalsTotal.Inc()
	s.mu.Lock()
	s.refusals++
	line := s.reportLocked(s.now())
	s.mu.Unlock()
	line()
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

// reportLocked returns the "still" line to write (after unlocking) when
// reportEvery has passed since the last line, else a no-op.
func (s *slots) reportLocked(now time.Time) func() {
	if !s.blocked.Load() || now.Sub(s.lastReport) < s.reportEvery {
		return func() {}
	}
	s.lastReport = now
	lasted, waits, refusals, connRefused := now.Sub(s.started), s.waits, s.refusals, s.connRefused
	return func() {
		s.log.Warn("database connection slots: the pool still cannot grow",
			"for", lasted.Round(time.Second), "waits", waits, "refused", refusals, "connects_refused", connRefused, "open", s.openConns())
	}
}

func (s *slots) openConns() int32 {
	if s.pool == nil {
		return 0
	}
	st := s.pool.Stat()
	return st.TotalConns() - st.ConstructingConns()
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
