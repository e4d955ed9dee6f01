package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
)

func TestTemplateNameFollowsTheMigrations(t *testing.T) {
	a := fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a (x int);")}}
	b := fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a (x bigint);")}}
	c := fstest.MapFS{"00001_b.sql": {Data: []byte("CREATE TABLE a (x int);")}}
	na, _ := templateNameFor(a)
	nb, _ := templateNameFor(b)
	nc, _ := templateNameFor(c)
	again, _ := templateNameFor(fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a (x int);")}})
	if na == nb || na == nc || nb == nc {
		t.Fatalf("different migrations share a template: %s %s %s", na, nb, nc)
	}
	if na != again {
		t.Fatalf("the same migrations got two templates: %s %s", na, again)
	}
}

// scratchTemplate is a template name of this test's own, dropped at its end.
func scratchTemplate(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := "kstmpl_test" + hex.EncodeToString(r[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", name)
		if err == nil {
			names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, n := range names {
				if err := dropBuild(ctx, conn, n); err != nil {
					t.Errorf("dropping %s: %v", n, err)
				}
			}
		}
		conn.Close(ctx)
	})
	return name, conn
}

func databasesNamed(t *testing.T, conn *pgx.Conn, prefix string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", prefix)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRacingBuildsLeaveOneTemplate: two processes that build the same
// template at once (as when the lock is not shared) both end up using one,
// and the loser's copy is gone.
func TestRacingBuildsLeaveOneTemplate(t *testing.T) {
	name, conn := scratchTemplate(t)
	server := ServerURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(context.Background(), server)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close(context.Background())
			_, errs[i] = buildTemplate(context.Background(), c, server, name)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := databasesNamed(t, conn, name); len(got) != 1 || got[0] != name {
		t.Fatalf("databases left: %q, want only %s", got, name)
	}
	u := createDatabase(t, server, name)
	c, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM api_keys").Scan(&n); err != nil {
		t.Fatalf("a copy of the template has no migrated schema: %v", err)
	}
}

// TestUnfinishedBuildIsReplaced: a build left by a process that died is
// dropped, and the template made anew.
func TestUnfinishedBuildIsReplaced(t *testing.T) {
	name, conn := scratchTemplate(t)
	ctx := context.Background()
	stale := name + "_bdeadbeef"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+stale+" IS_TEMPLATE true"); err != nil {
		t.Fatal(err)
	}
	if got, err := ensureTemplate(ctx, ServerURL(t), name); err != nil || got != name {
		t.Fatalf("ensureTemplate = %q, %v", got, err)
	}
	if got := databasesNamed(t, conn, name); len(got) != 1 || got[0] != name {
		t.Fatalf("databases left: %q, want only %s", got, name)
	}
	// A second process finds it and builds nothing.
	if got, err := ensureTemplate(ctx, ServerURL(t), name); err != nil || got != name {
		t.Fatalf("ensureTemplate again = %q, %v", got, err)
	}
	if got := databasesNamed(t, conn, name); len(got) != 1 {
		t.Fatalf("databases left: %q, want only %s", got, name)
	}
}
