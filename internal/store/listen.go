package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/keyservice/keyservice/internal/backoff"
)

// ChangeHandler receives what the LISTEN connection learns of changes to
// keys. Its methods are called from one goroutine.
type ChangeHandler interface {
	// Changed delivers an event sent by a replica (this one included: the
	// writer's own NOTIFY comes back to it too).
	Changed(e Event)
	// StreamLost: the connection is being (re)made; events sent until the
	// next CatchUp returns may be missed.
	StreamLost()
	// CatchUp runs each time LISTEN is in place on a new connection: it
	// reads what was missed meanwhile (an incremental sync). An error
	// leaves that to the handler's next sync.
	CatchUp(ctx context.Context) error
	// ListenError reports a connection problem or an unreadable payload,
	// for the log; the listener reconnects by itself.
	ListenError(err error)
}

// Listen delivers key changes to h until ctx ends. It holds one
// connection outside the pool (ListenConn) and reconnects, with jittered
// backoff, whenever that connection fails.
func (s *Store) Listen(ctx context.Context, h ChangeHandler) error {
	var (
		bo     backoff.Backoff // 100 ms .. 5 s
		failed bool
	)
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			h.StreamLost()
			if failed && !backoff.Sleep(ctx, bo.Next()) {
				return nil, ctx.Err()
			}
			conn, err := s.ListenConn(ctx)
			if err != nil {
				failed = true
				return nil, err
			}
			failed = false
			bo.Reset()
			return conn, nil
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				h.ListenError(err)
			}
		},
		ReconnectDelay: 50 * time.Millisecond,
	}
	l.Handle(NotifyChannel, listenHandler{h})
	err := l.Listen(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type listenHandler struct{ h ChangeHandler }

func (l listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	e, err := ParseEvent(n.Payload)
	if err != nil {
		return err
	}
	l.h.Changed(e)
	return nil
}

func (l listenHandler) HandleBacklog(ctx context.Context, _ string, _ *pgx.Conn) error {
	return l.h.CatchUp(ctx)
}
