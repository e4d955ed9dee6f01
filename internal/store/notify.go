package store

import (
	"context"
	"fmt"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// notify queues an event in tx; Postgres delivers it only if tx commits.
func (s *Store) notify(ctx context.Context, tx *writeTx, e apikey.Event) error {
	p := dbsqlc.NotifyParams{Channel: NotifyChannel, Payload: e.Payload()}
	if err := s.q.Notify(ctx, tx.deferred(), p); err != nil {
		return fmt.Errorf("sending notify: %w", err)
	}
	return nil
}
