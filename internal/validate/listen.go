package validate

import (
	"context"

	"github.com/keyservice/keyservice/internal/apikey"
)

// changeHandler is how the validator hears the store's LISTEN connection
// (apikey.ChangeHandler). It tracks whether the stream is up: while it is
// known to be down, sync runs every streamDownSync and NOT_FOUND answers
// are cached only briefly (see negEntry.short).
type changeHandler struct{ v *Validator }

var _ apikey.ChangeHandler = changeHandler{}

func (h changeHandler) Changed(e apikey.Event) { h.v.applyRemote(e, fromNotify) }

// StreamLost: a (re)connection; until its LISTEN is in place and the
// backlog read (CatchUp), events from other replicas are missed.
func (h changeHandler) StreamLost() {
	h.v.backlogPending.Store(false)
	if h.v.streamUp.Swap(false) {
		select {
		case h.v.streamLost <- struct{}{}:
		default:
		}
	}
}

func (h changeHandler) CatchUp(ctx context.Context) error {
	if err := h.v.sync(ctx); err != nil {
		// LISTEN is in place but the backlog is unread: the next successful
		// sync of the loop reads it and marks the stream up.
		h.v.backlogPending.Store(true)
		return err
	}
	h.v.streamUp.Store(true)
	h.v.signals.streamUp.Signal()
	return nil
}

func (h changeHandler) ListenError(err error) {
	h.v.log.Warn("LISTEN connection problem; reconnecting", "error", err)
}

// streamDown reports whether this replica listens for changes but its
// LISTEN connection is not up (so changes arrive only by sync).
func (v *Validator) streamDown() bool {
	return v.listening.Load() && !v.streamUp.Load()
}
