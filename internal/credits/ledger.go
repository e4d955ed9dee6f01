// Package credits spends keys' and owners' credits on the validation path
// without a statement per call: each replica leases credits from
// PostgreSQL (store.LeaseCredits) and spends the lease in memory. What is
// spent is always within what was granted, and what was granted was taken
// from the pool first, so credits are never overspent, with any number of
// replicas. The rule (docs/credits.md):
//
//   - a lease is clamp(ceil(remaining/16), max(cost,1), max(LeaseMax,
//     cost)) and never more than remains: leases shrink as the remainder
//     does;
//   - a crashed replica loses the unspent part of its leases (at most one
//     per subject, each at most LeaseMax and 1/16 of what remained when it
//     was granted), never more; Close gives them back;
//   - a lease is not spent at or after the refill time: the next lease
//     applies the refill, and an old lease's unused credits expire with
//     its period; setting credits voids leases (the epoch changes);
//   - unused leases go back after IdleReturn without spends, and at once
//     when the credits change elsewhere (Changed, from NOTIFY);
//   - a refused lease request marks the subject exhausted: refusals are
//     answered from memory until a change, the refill time, or a second.
package credits

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/apikey"
)

// Store is where leases come from (*store.Store).
type Store interface {
	LeaseCredits(ctx context.Context, subject uuid.UUID, want, cost int64, now time.Time) (apikey.Lease, error)
	ReturnCredits(ctx context.Context, subject uuid.UUID, epoch, unused int64, now time.Time) error
}

// Config is what a Ledger needs.
type Config struct {
	Store Store
	// LeaseMax is the most credits leased at once (0: 1000).
	LeaseMax int64
	// IdleReturn: a lease unused this long is given back (0: 5s).
	IdleReturn time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	Registry   prometheus.Registerer
}

// recheck is how long a refused lease request is believed (a lost NOTIFY
// heals within it).
const recheck = time.Second

// Ledger holds this replica's leases.
type Ledger struct {
	cfg Config
	// accounts holds *account by subject: read without a lock on the hot
	// path.
	accounts sync.Map
	m        metrics
}

type account struct {
	mu       sync.Mutex
	left     int64 // unspent credits of the lease
	gen      uint64
	epoch    int64
	pool     int64     // what remained in the pool at the last grant
	until    time.Time // the lease ends (the refill time); zero: never
	hasLease bool
	// exhausted: the last lease request was refused; believed until
	// recheckAt. none: the subject has no credits (until recheckAt).
	exhausted, none bool
	recheckAt       time.Time
	fetching        chan struct{} // closed when the lease request in flight ends
	lastSpend       time.Time
}

type metrics struct {
	granted, returned, refused prometheus.Counter
	statements                 *prometheus.CounterVec
}

// New returns a Ledger.
func New(cfg Config) *Ledger {
	if cfg.LeaseMax <= 0 {
		cfg.LeaseMax = 1000
	}
	if cfg.IdleReturn <= 0 {
		cfg.IdleReturn = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{cfg: cfg}
	l.m = metrics{
		granted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_credits_leased_total", Help: "Credits leased to this replica."}),
		returned: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_credits_returned_total", Help: "Unused leased credits given back."}),
		refused:  prometheus.NewCounter(prometheus.CounterOpts{Name: "keyservice_credits_lease_refusals_total", Help: "Lease requests refused: fewer credits left than the cost."}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyservice_credits_statements_total",
			Help: "Statement groups the credits ledger sent, by op (lease, return)."}, []string{"op"}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(l.m.granted, l.m.returned, l.m.refused, l.m.statements,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyservice_credits_held", Help: "Credits this replica holds leased and unspent."},
				func() float64 { return float64(l.Held()) }))
	}
	return l
}

func (l *Ledger) account(subject uuid.UUID) *account {
	if a, ok := l.accounts.Load(subject); ok {
		return a.(*account)
	}
	a, _ := l.accounts.LoadOrStore(subject, &account{lastSpend: l.cfg.Now()}) // not idle before its first spend
	return a.(*account)
}

// status is what a's state answers (a.mu held).
func (a *account) status(allowed bool) apikey.CreditStatus {
	return apikey.CreditStatus{Allowed: allowed, Remaining: a.left + a.pool, NextRefillAt: a.until, Lease: a.gen}
}

// Spend takes cost from subject's credits: from the lease in memory when
// it covers the cost, else from a new lease. cost 0 checks that at least
// one credit is left, spending nothing. An error (the store could not
// answer) spends nothing.
func (l *Ledger) Spend(ctx context.Context, subject uuid.UUID, cost int64) (apikey.CreditStatus, error) {
	a := l.account(subject)
	need := max(cost, 1)
	for {
		now := l.cfg.Now()
		a.mu.Lock()
		if a.none && now.Before(a.recheckAt) {
			a.mu.Unlock()
			return apikey.CreditStatus{Allowed: true, Remaining: -1}, nil
		}
		live := a.hasLease && (a.until.IsZero() || now.Before(a.until))
		if live && a.left >= need {
			a.left -= cost
			a.lastSpend = now
			st := a.status(true)
			a.mu.Unlock()
			return st, nil
		}
		if a.exhausted && now.Before(a.recheckAt) && need > a.left+a.pool {
			// Fewer than need were left when last asked: a smaller cost
			// may still be had (it asks again).
			st := a.status(false)
			a.mu.Unlock()
			return st, nil
		}
		if ch := a.fetching; ch != nil {
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return apikey.CreditStatus{}, ctx.Err()
			}
		}
		ch := make(chan struct{})
		a.fetching = ch
		a.mu.Unlock()
		l.m.statements.WithLabelValues("lease").Inc()
		lease, err := l.cfg.Store.LeaseCredits(ctx, subject, max(l.cfg.LeaseMax, cost), cost, now)
		a.mu.Lock()
		a.fetching = nil
		close(ch)
		switch {
		case errors.Is(err, apikey.ErrNoCredits):
			// The credits were removed: the subject has none, and is not
			// refused for them.
			a.none, a.recheckAt, a.hasLease, a.left = true, now.Add(recheck), false, 0
			a.mu.Unlock()
			return apikey.CreditStatus{Allowed: true, Remaining: -1}, nil
		case err != nil:
			a.mu.Unlock()
			return apikey.CreditStatus{}, err
		}
		a.none = false
		if lease.Granted == 0 {
			l.m.refused.Inc()
			a.exhausted, a.pool = true, lease.Remaining
			a.recheckAt = now.Add(recheck)
			if lease.NextRefillAt != nil && lease.NextRefillAt.Before(a.recheckAt) {
				a.recheckAt = *lease.NextRefillAt
			}
			if !live || a.epoch != lease.Epoch {
				a.left, a.hasLease = 0, false
			}
			st := a.status(false)
			a.mu.Unlock()
			return st, nil
		}
		l.m.granted.Add(float64(lease.Granted))
		if !live || a.epoch != lease.Epoch {
			a.left = 0 // an old lease's leftovers are void (refill or set)
		}
		a.left += lease.Granted
		a.gen++
		a.epoch, a.pool, a.hasLease, a.exhausted = lease.Epoch, lease.Remaining, true, false
		a.until = time.Time{}
		if lease.NextRefillAt != nil {
			a.until = *lease.NextRefillAt
		}
		a.mu.Unlock()
	}
}

// Refund gives back cost that a call spent (st is what Spend answered)
// when a later budget refused it: into the same lease only.
func (l *Ledger) Refund(subject uuid.UUID, cost int64, st apikey.CreditStatus) {
	if cost <= 0 {
		return
	}
	a := l.account(subject)
	a.mu.Lock()
	if a.hasLease && a.gen == st.Lease {
		a.left += cost
	}
	a.mu.Unlock()
}

// take empties a's lease and says what to give back (a.mu held).
func (a *account) take() (epoch, unused int64) {
	if a.hasLease {
		epoch, unused = a.epoch, a.left
	}
	a.left, a.hasLease, a.exhausted, a.none = 0, false, false, false
	a.gen++
	return epoch, unused
}

// giveBack returns unused credits of a lease of epoch.
func (l *Ledger) giveBack(ctx context.Context, subject uuid.UUID, epoch, unused int64) error {
	if unused <= 0 {
		return nil
	}
	l.m.statements.WithLabelValues("return").Inc()
	if err := l.cfg.Store.ReturnCredits(ctx, subject, epoch, unused, l.cfg.Now()); err != nil {
		return err
	}
	l.m.returned.Add(float64(unused))
	return nil
}

// Changed: subject's credits changed elsewhere (a set, a top-up, a
// charge): the lease goes back (in the background) and the next Spend asks
// again.
func (l *Ledger) Changed(subject uuid.UUID) {
	v, ok := l.accounts.Load(subject)
	if !ok {
		return
	}
	a := v.(*account)
	a.mu.Lock()
	epoch, unused := a.take()
	a.mu.Unlock()
	if unused > 0 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.giveBack(ctx, subject, epoch, unused); err != nil {
				l.cfg.Log.Warn("could not give back leased credits (they are lost, never overspent)", "credits", unused, "error", err)
			}
		}()
	}
}

// Reset: changes may have been missed (the LISTEN stream was lost): every
// lease goes back, as on Changed.
func (l *Ledger) Reset() {
	l.accounts.Range(func(id, _ any) bool {
		l.Changed(id.(uuid.UUID))
		return true
	})
}

// Held is the credits this replica holds leased and unspent.
func (l *Ledger) Held() int64 {
	var n int64
	l.accounts.Range(func(_, v any) bool {
		a := v.(*account)
		a.mu.Lock()
		n += a.left
		a.mu.Unlock()
		return true
	})
	return n
}

// Run gives back leases idle for IdleReturn and forgets idle accounts,
// until ctx ends.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(max(l.cfg.IdleReturn/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.returnIdle(ctx)
		}
	}
}

func (l *Ledger) returnIdle(ctx context.Context) {
	now := l.cfg.Now()
	type back struct {
		id            uuid.UUID
		epoch, unused int64
	}
	var backs []back
	l.accounts.Range(func(k, v any) bool {
		a, id := v.(*account), k.(uuid.UUID)
		a.mu.Lock()
		if a.fetching == nil && now.Sub(a.lastSpend) >= l.cfg.IdleReturn && now.After(a.recheckAt) {
			epoch, unused := a.take()
			if unused > 0 {
				backs = append(backs, back{id, epoch, unused})
			}
			// Forgotten (memory stays bounded by the subjects in use). A
			// Spend that loaded it just before may still lease into it:
			// that one lease is then lost as a crash loses it (bounded,
			// never overspent), and the next Spend starts a new account.
			l.accounts.Delete(id)
		}
		a.mu.Unlock()
		return true
	})
	for _, b := range backs {
		if err := l.giveBack(ctx, b.id, b.epoch, b.unused); err != nil {
			l.cfg.Log.Warn("could not give back idle leased credits (they are lost, never overspent)", "credits", b.unused, "error", err)
		}
	}
}

// Close gives back every unused lease (graceful shutdown loses no
// credits); the first error is returned after trying them all.
func (l *Ledger) Close(ctx context.Context) error {
	var first error
	l.accounts.Range(func(k, v any) bool {
		a := v.(*account)
		a.mu.Lock()
		epoch, unused := a.take()
		a.mu.Unlock()
		if err := l.giveBack(ctx, k.(uuid.UUID), epoch, unused); err != nil && first == nil {
			first = err
		}
		return true
	})
	return first
}

// Handler puts l in front of next: credits events go to l (and no
// further); a lost stream resets l too.
func Handler(next apikey.ChangeHandler, l *Ledger) apikey.ChangeHandler {
	return handler{next: next, l: l}
}

type handler struct {
	next apikey.ChangeHandler
	l    *Ledger
}

func (h handler) Changed(e apikey.Event) {
	if e.Kind == apikey.EventCredits {
		h.l.Changed(e.Subject)
		return
	}
	h.next.Changed(e)
}

func (h handler) StreamLost() {
	h.l.Reset()
	h.next.StreamLost()
}

func (h handler) CatchUp(ctx context.Context) error { return h.next.CatchUp(ctx) }
func (h handler) ListenError(err error)             { h.next.ListenError(err) }
