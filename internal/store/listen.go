package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
)

// Listen delivers key changes to h until ctx ends. It holds one
// connection outside the pool (ListenConn) and reconnects, with jittered
// backoff, whenever that connection fails.
func (s *Store) Listen(ctx context.Context, h apikey.ChangeHandler) error {
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

type listenHandler struct{ h apikey.ChangeHandler }

func (l listenHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	e, err := apikey.ParseEvent(n.Payload)
	if err != nil {
		return err
	}
	l.h.Changed(e)
	return nil
}

func (l listenHandler) HandleBacklog(ctx context.Context, _ string, _ *pgx.Conn) error {
	return l.h.CatchUp(ctx)
}
