package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyservice/keyservice/internal/apikey"
)

// classify wraps err with ErrNotFound or ErrUnavailable when it means that,
// keeping the original error for logs. nil stays nil.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrUnavailable):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", apikey.ErrNotFound, err)
	case errors.Is(err, context.Canceled):
		return err // the caller gave up; not an outage
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	return err
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.QueryCanceled, // statement_timeout
			pgerrcode.AdminShutdown,
			pgerrcode.CrashShutdown,
			pgerrcode.CannotConnectNow,
			pgerrcode.ReadOnlySQLTransaction: // a standby after failover
			return true
		}
		// Connection exceptions, and insufficient resources (too many
		// connections, out of memory, disk full).
		return pgerrcode.IsConnectionException(pgErr.Code) || pgerrcode.IsInsufficientResources(pgErr.Code)
	}
	// A connection that died mid-query surfaces as an unexpected EOF or a
	// closed-connection error without a PgError (pgconn's "conn closed" when
	// the socket went away while a statement waited for its answer).
	return pgconn.SafeToRetry(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, pgconn.ErrConnClosed)
}
