package store

import (
	"context"
	"fmt"
	"strconv"
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
}

// OpenPool builds a pool. It does not wait for the database: a service may
// start before Postgres and become ready when it appears.
func OpenPool(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		// pgx's message may quote the URL, password included; keep it out.
		return nil, fmt.Errorf("database URL is not valid")
	}
	if c.MaxConns > 0 {
		cfg.MaxConns = c.MaxConns
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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	return pool, nil
}
