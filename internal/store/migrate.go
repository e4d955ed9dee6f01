package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyservice/keyservice/migrations"
)

// Migrator applies the embedded migrations. It takes a Postgres advisory
// lock, so replicas started together migrate one at a time; each migration
// runs in its own transaction, so a failure leaves no half-applied state.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// NewMigrator returns a Migrator on pool.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	db := stdlib.OpenDBFromPool(pool)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return &Migrator{db: db, provider: p}, nil
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context, log *slog.Logger) error {
	results, err := m.provider.Up(ctx)
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return classify(fmt.Errorf("migrating: %w", err))
	}
	return nil
}

// Migrate applies every pending migration to the database c names, on a
// pool of its own that it closes: the one way a command, the bench or a
// test brings a database up to date.
func Migrate(ctx context.Context, c PoolConfig, log *slog.Logger) error {
	if c.MaxConns == 0 {
		c.MaxConns = 2
	}
	pool, err := OpenPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up(ctx, log)
}

// Current reports whether every embedded migration has been applied.
func (m *Migrator) Current(ctx context.Context) (bool, error) {
	pending, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, classify(fmt.Errorf("checking migrations: %w", err))
	}
	return !pending, nil
}

// Close releases the migrator (not the pool).
func (m *Migrator) Close() error { return m.db.Close() }
