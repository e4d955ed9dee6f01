package pgfault_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/pgfault"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// TestCutsTheAnswerToTheMarkedCommit: a transaction that ran the marked
// statement commits on the server, yet its client sees the connection
// break at COMMIT; other transactions pass untouched, before and after.
func TestCutsTheAnswerToTheMarkedCommit(t *testing.T) {
	u := testdb.NewDatabase(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgfault.Start(pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	direct := pu.String()
	pu.Host = p.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "CREATE TABLE marked (v int)"); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, pu.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	cut := p.CutNextCommit("INSERT INTO marked")
	// Unmarked, and marked but rolled back: untouched.
	if err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, "SELECT 1"); return err }); err != nil {
		t.Fatalf("unmarked transaction: %v", err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO marked VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	// Marked (a prepared statement reused: the second Bind names it).
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO marked VALUES ($1)", 2)
		return err
	})
	if err == nil {
		t.Fatal("the marked transaction's COMMIT answered; want a broken connection")
	}
	t.Logf("the client saw: %v", err)
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the cut was not signalled")
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM marked WHERE v = 2").Scan(&n); err != nil || n != 1 {
		t.Fatalf("committed rows: %d, %v; want 1 (the server committed)", n, err)
	}
	// Disarmed: the next connection commits normally.
	c2, err := pgx.Connect(ctx, pu.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if err := pgx.BeginFunc(ctx, c2, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO marked VALUES ($1)", 3)
		return err
	}); err != nil {
		t.Fatalf("after the cut: %v", err)
	}
}
