package testdb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func current(t *testing.T, pool *pgxpool.Pool) bool {
	t.Helper()
	m, err := store.NewMigrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ok, err := m.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestNewDatabasesAreMigratedAndApart: parallel tests each get a migrated
// database of their own; what one writes the others do not see.
func TestNewDatabasesAreMigratedAndApart(t *testing.T) {
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel() // New from many tests at once
			_, pool := testdb.New(t)
			if !current(t, pool) {
				t.Fatal("the database is not migrated")
			}
			ctx := context.Background()
			insert := "INSERT INTO api_keys (key_hash, hint, name, owner) VALUES (decode(repeat('00', 32), 'hex'), 'h', $1, 'o')"
			if _, err := pool.Exec(ctx, insert, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			var names []string
			rows, err := pool.Query(ctx, "SELECT name FROM api_keys")
			if err == nil {
				names, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil || len(names) != 1 || names[0] != fmt.Sprint(i) {
				t.Fatalf("keys %q (%v), want only this test's", names, err)
			}
		})
	}
}

// TestTemplateTakesNoConnections: the template every migrated database is
// copied from refuses connections, so no session can hold it open and make
// CREATE DATABASE … TEMPLATE fail.
func TestTemplateTakesNoConnections(t *testing.T) {
	testdb.New(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := testdb.TemplateName()
	var isTemplate, allowConn bool
	if err := conn.QueryRow(ctx, "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1", name).Scan(&isTemplate, &allowConn); err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	if !isTemplate || allowConn {
		t.Fatalf("template %s: datistemplate %v, datallowconn %v; want true, false", name, isTemplate, allowConn)
	}
}

// BenchmarkNew is the cost of one test's migrated database (the template
// is made, or found, before the timer starts).
func BenchmarkNew(b *testing.B) {
	testdb.New(b)
	for b.Loop() {
		testdb.New(b)
	}
}

// BenchmarkNewDatabase is the cost of one test's empty database.
func BenchmarkNewDatabase(b *testing.B) {
	for b.Loop() {
		testdb.NewDatabase(b)
	}
}
