package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// inTx runs fn in a transaction on a pooled connection and commits. With a
// request in ctx (WithRequest), the request is claimed first and fn must
// record its answer (Store.answer).
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return classify(fmt.Errorf("beginning transaction: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	req := requestOf(ctx)
	if req != nil {
		if err := s.claim(ctx, tx, req); err != nil {
			return classify(err)
		}
	}
	if err := fn(tx); err != nil {
		return classify(err)
	}
	if req != nil && !req.answered {
		return fmt.Errorf("store: the write of request %s recorded no answer", req.ID)
	}
	if err := tx.Commit(ctx); err != nil {
		return commitError(err)
	}
	return nil
}

// commitError classifies a failed COMMIT. Only the server's own answer
// (an error, or ROLLBACK for a failed transaction) says that nothing was
// applied; any other failure came after COMMIT may have reached the server
// and is ErrCommitUnknown, whatever broke the connection.
//
// A FATAL answer, or one of class 57 (operator intervention: the backend
// terminated) or 08 (connection), is not the server refusing the commit:
// with synchronous replication a backend terminated while waiting for the
// standby has committed locally. Those are unknown too.
func commitError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC" || strings.HasPrefix(pgErr.Code, "57") || strings.HasPrefix(pgErr.Code, "08") {
			return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
		}
		return classify(fmt.Errorf("committing: %w", err))
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return classify(fmt.Errorf("committing: %w", err))
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up; it will not read the answer
	}
	return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
}
