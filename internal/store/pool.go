package store

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig holds the explicit pool limits.
type PoolConfig struct {
	URL              string
	MaxConns         int32
	StatementTimeout time.Duration
	ConnectTimeout   time.Duration
	// Tracer, when set, sees every query (tests count lookups with it).
	Tracer pgx.QueryTracer
	// MinConns are opened at start and kept open, so that a database that
	// later runs out of connection slots cannot starve the pool below them.
	MinConns int32
}

// OpenPool builds a pool. It does not wait for the database: a service may
// start before Postgres and become ready when it appears.
func OpenPool(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	return openPool(ctx, c, nil)
}

// Open builds a pool and a Store on it that, when the database has no slot
// for a new connection, waits for one of the pool's open connections
// instead of failing, and backs off from connecting (see slots).
// acquireTimeout bounds every wait for a connection.
func Open(ctx context.Context, c PoolConfig, acquireTimeout time.Duration, log *slog.Logger) (*Store, error) {
	sl := newSlots(log)
	pool, err := openPool(ctx, c, sl)
	if err != nil {
		return nil, err
	}
	sl.pool = pool
	sl.probe = func(ctx context.Context) error {
		c, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
		if err == nil {
			_ = c.Close(ctx)
		}
		return err
	}
	st := New(pool, acquireTimeout)
	st.slots = sl
	return st, nil
}

func openPool(ctx context.Context, c PoolConfig, sl *slots) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		// pgx's message may quote the URL, password included; keep it out.
		return nil, fmt.Errorf("database URL is not valid")
	}
	if c.MaxConns > 0 {
		cfg.MaxConns = c.MaxConns
	}
	cfg.MinConns = min(c.MinConns, cfg.MaxConns)
	if cfg.MinConns > 0 && !strings.Contains(c.URL, "pool_max_conn_lifetime") {
		// The connections kept open are kept: closed by age, they would all
		// go at once (opened together), and on a server at its limit
		// another client would take their slots. Idle ones above MinConns
		// still close after pool_max_conn_idle_time.
		cfg.MaxConnLifetime = 0
	}
	if c.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	if c.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(c.StatementTimeout.Milliseconds(), 10)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "keyservice"
	if c.Tracer != nil {
		cfg.ConnConfig.Tracer = c.Tracer
	}
	if sl != nil {
		cfg.BeforeConnect = sl.beforeConnect
	}
	UseTypes(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	return pool, nil
}
