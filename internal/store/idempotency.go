package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// claim records ctx's request in tx before the write, or reports the
// answer recorded by an earlier write with the same id.
func (s *Store) claim(ctx context.Context, tx *writeTx, r *apikey.Request) error {
	actor := apikey.AuditOf(ctx).RequestOwner()
	for range 2 {
		n, err := s.q.ClaimRequest(ctx, tx, dbsqlc.ClaimRequestParams{
			Actor: actor, RequestID: r.ID, Method: r.Method, BodyHash: r.BodyHash,
			Lifetime: pgtype.Interval{Microseconds: r.Window.Microseconds(), Valid: true},
		})
		if err != nil {
			return fmt.Errorf("claiming request id: %w", err)
		}
		if n == 1 {
			return nil
		}
		row, err := s.q.GetRequest(ctx, tx, dbsqlc.GetRequestParams{Actor: actor, RequestID: r.ID})
		if errors.Is(err, pgx.ErrNoRows) {
			continue // it expired between the two statements: claim it
		}
		if err != nil {
			return fmt.Errorf("reading request record: %w", err)
		}
		if row.Method != r.Method || !bytes.Equal(row.BodyHash, r.BodyHash) {
			return apikey.ErrRequestReused
		}
		if row.Response == nil {
			return fmt.Errorf("store: the record of request %s holds no answer", r.ID)
		}
		return &apikey.Replayed{Answer: row.Response, KeyIDs: row.KeyIDs}
	}
	return fmt.Errorf("store: request %s expired twice while claimed", r.ID)
}

// answer records the answer of the write made with ctx's request, if any,
// in the write's transaction. Every write that may carry a request calls
// it once, after its last change.
func (s *Store) answer(ctx context.Context, tx *writeTx, recs ...apikey.Key) error {
	r := apikey.RequestOf(ctx)
	if r == nil {
		return nil
	}
	b, err := r.Answer(recs...)
	if err != nil {
		return fmt.Errorf("encoding the answer of request %s: %w", r.ID, err)
	}
	ids := make([]uuid.UUID, len(recs))
	for i := range recs {
		ids[i] = recs[i].ID
	}
	p := dbsqlc.SetRequestResponseParams{Response: b, KeyIDs: ids, Actor: apikey.AuditOf(ctx).RequestOwner(), RequestID: r.ID}
	if err := s.q.SetRequestResponse(ctx, tx.deferred(), p); err != nil {
		return fmt.Errorf("recording the answer of request %s: %w", r.ID, err)
	}
	tx.answered = true
	return nil
}

// expiryBatch bounds the rows one statement of ExpireRequests deletes.
const expiryBatch = 1000

// DeleteExpiredRequests deletes the request records past their window, in
// batches, and returns how many it deleted. Expired records are never
// honoured; this only keeps the table small.
func (s *Store) DeleteExpiredRequests(ctx context.Context) (int64, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var total int64
	for {
		n, err := s.q.DeleteExpiredRequests(ctx, conn, expiryBatch)
		total += n
		if err != nil {
			return total, classify(fmt.Errorf("deleting expired request records: %w", err))
		}
		if n < expiryBatch {
			return total, nil
		}
	}
}

// ExpireRequests runs DeleteExpiredRequests every interval until ctx ends
// (every replica does: a run that finds nothing costs one index probe).
func (s *Store) ExpireRequests(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.DeleteExpiredRequests(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("deleting expired request records", "error", err)
		case n > 0:
			log.Debug("deleted expired request records", "rows", n)
		}
	}
}
