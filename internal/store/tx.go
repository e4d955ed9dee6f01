package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// writeTx is a write transaction. The statements whose answers the write
// does not read (its audit events, its NOTIFY, the answer of its request)
// wait in later and go to the server in one batch with COMMIT: an admin
// write costs BEGIN, the statements it reads, and that batch, so a write
// waits for the server (and, when the CPU is busy, for the scheduler)
// fewer times.
type writeTx struct {
	pgx.Tx
	later pgx.Batch
	// answered: the write recorded the answer of its request (answer).
	answered bool
}

// deferred is where sqlc's :exec statements go to wait for COMMIT: its
// Exec queues and reports success; whether the statement succeeded is
// known at COMMIT, and a failure there rolls the whole write back.
func (t *writeTx) deferred() dbsqlc.DBTX { return laterDB{t} }

type laterDB struct{ t *writeTx }

func (d laterDB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	d.t.later.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

var errDeferredRead = errors.New("store: a deferred statement cannot return rows")

func (laterDB) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errDeferredRead
}

func (laterDB) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }

func (laterDB) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errDeferredRead
}

type errRow struct{}

func (errRow) Scan(...any) error { return errDeferredRead }

// inTx runs fn in a transaction on a pooled connection and commits. With a
// request in ctx (WithRequest), the request is claimed first and fn must
// record its answer (Store.answer).
func (s *Store) inTx(ctx context.Context, fn func(*writeTx) error) error {
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return classify(fmt.Errorf("beginning transaction: %w", err))
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the write failed already
		}
	}()
	wt := &writeTx{Tx: tx}
	req := apikey.RequestOf(ctx)
	if req != nil {
		if err := s.claim(ctx, wt, req); err != nil {
			return classify(err)
		}
	}
	if err := fn(wt); err != nil {
		return classify(err)
	}
	if req != nil && !wt.answered {
		return fmt.Errorf("store: the write of request %s recorded no answer", req.ID)
	}
	if err := commitWith(ctx, tx, &wt.later); err != nil {
		return err
	}
	committed = true
	return nil
}

// commitWith sends the deferred statements and COMMIT in one batch and
// reads their answers. Once the batch is sent, COMMIT may have reached the
// server: a failure that is not the server's own answer is unknown
// (commitError). A deferred statement the server refused aborts the
// transaction, and the COMMIT after it answers ROLLBACK: nothing applied.
func commitWith(ctx context.Context, tx pgx.Tx, later *pgx.Batch) error {
	n := later.Len()
	later.Queue("commit")
	br := tx.SendBatch(ctx, later)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			// The server's own refusal of a deferred statement (any
			// severity or class: the server then skips what follows in the
			// batch, COMMIT included), or an error pgx met before sending
			// anything, means that nothing was applied. Anything else came
			// after COMMIT may have reached the server.
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
				return classify(fmt.Errorf("committing: %w", err))
			}
			return commitError(err)
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return commitError(err)
	}
	if tag.String() == "ROLLBACK" {
		return classify(fmt.Errorf("committing: %w", pgx.ErrTxCommitRollback))
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
			return fmt.Errorf("%w: %w", apikey.ErrCommitUnknown, err)
		}
		return classify(fmt.Errorf("committing: %w", err))
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return classify(fmt.Errorf("committing: %w", err))
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up; it will not read the answer
	}
	return fmt.Errorf("%w: %w", apikey.ErrCommitUnknown, err)
}
