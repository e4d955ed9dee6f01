package tenancy

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
)

// Handler wraps the validation path's change handler: events about
// keyspaces and credentials make the registry read its tables again (in
// the listener's goroutine, so a key created in a new keyspace is never
// seen before its keyspace: NOTIFYs arrive in commit order), and a
// reconnection's catch-up reads them before the keys.
func (r *Registry) Handler(next apikey.ChangeHandler) apikey.ChangeHandler {
	return handler{r: r, next: next}
}

type handler struct {
	r    *Registry
	next apikey.ChangeHandler
}

func (h handler) Changed(e apikey.Event) {
	if !e.Tenancy() {
		h.next.Changed(e)
		return
	}
	if e.Kind == apikey.EventCredentials {
		// Keys never wait on credentials: Run reads them at once, and a
		// burst of changes costs one read (a flood of credential writes
		// cannot hold up key events).
		h.r.kick()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := h.r.Load(ctx); err != nil {
		// The periodic sync reads them again.
		h.r.cfg.Log.Warn("reading keyspaces and credentials after a change", "error", err)
	}
}

func (h handler) StreamLost() { h.next.StreamLost() }

func (h handler) CatchUp(ctx context.Context) error {
	// The keys' catch-up runs whatever became of this one: a failed read of
	// credentials must not leave missed key revocations unread.
	err := h.r.Load(ctx)
	return errors.Join(err, h.next.CatchUp(ctx))
}

func (h handler) ListenError(err error) { h.next.ListenError(err) }

// Run reads the tables again every SyncEvery (a lost notification is
// caught within it) and writes last uses every FlushEvery, until ctx ends;
// then it writes what is left.
func (r *Registry) Run(ctx context.Context) error {
	sync := time.NewTicker(r.cfg.SyncEvery)
	defer sync.Stop()
	flush := time.NewTicker(r.cfg.FlushEvery)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			defer cancel()
			r.Flush(fctx)
			return nil
		case <-sync.C:
			if err := r.loadWithin(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("reading keyspaces and credentials", "error", err)
			}
		case <-r.kicked:
			if err := r.loadWithin(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("reading credentials after a change; the periodic sync retries", "error", err)
			}
		case <-flush.C:
			fctx, cancel := context.WithTimeout(ctx, opTimeout)
			r.Flush(fctx)
			cancel()
		}
	}
}

// opTimeout bounds each read and write of the registry: a stuck read
// must not hold the lock (and the listener, which may wait on it) for long.
const opTimeout = 5 * time.Second

func (r *Registry) loadWithin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return r.Load(ctx)
}

// Flush writes the last uses seen since the last flush, in one statement.
func (r *Registry) Flush(ctx context.Context) {
	var ids []uuid.UUID
	var at []time.Time
	var marks []*Entry
	for _, e := range r.Current().StoredCredentials() {
		if u := e.used.Load(); u > e.flushed.Load() {
			ids, at, marks = append(ids, e.ID), append(at, time.Unix(0, u).UTC()), append(marks, e)
		}
	}
	if len(ids) == 0 {
		return
	}
	if err := r.cfg.Store.TouchCredentialsUsed(ctx, ids, at); err != nil {
		r.cfg.Log.Warn("recording credentials' last use", "error", err)
		return
	}
	for i, e := range marks {
		e.flushed.Store(at[i].UnixNano())
	}
}

// Feed is what the validation path listens to (store.Store's Listen).
type Feed interface {
	Listen(ctx context.Context, h apikey.ChangeHandler) error
}

// Feed returns feed with the registry's Handler in front of every handler
// that listens to it.
func (r *Registry) Feed(feed Feed) Feed { return wrapped{r: r, feed: feed} }

type wrapped struct {
	r    *Registry
	feed Feed
}

func (w wrapped) Listen(ctx context.Context, h apikey.ChangeHandler) error {
	return w.feed.Listen(ctx, w.r.Handler(h))
}

// LoadRetrying loads the registry, retrying with backoff while the
// database cannot answer, until ctx ends (false then).
func (r *Registry) LoadRetrying(ctx context.Context) bool {
	var bo backoff.Backoff
	for {
		err := r.loadWithin(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := bo.Next()
		r.cfg.Log.Warn("reading keyspaces and credentials failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
		if !backoff.Sleep(ctx, wait) {
			return false
		}
	}
}
