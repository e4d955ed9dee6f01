package pglocal_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/pglocal"
)

// TestStartStopRestart starts a real private cluster from the local
// binaries (as the tests and `make run` do when no database answers),
// stops it, and starts it again on the same port with its data intact.
func TestStartStopRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Ephemeral: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("no cluster initialised in %s: %v", dir, err)
	}
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (x int)"); err != nil {
		t.Fatal(err)
	}
	port := c.Port()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("cluster still answers after Stop")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if c.Port() != port {
		t.Fatalf("restarted on port %d, was %d", c.Port(), port)
	}
	if err := exec("SELECT * FROM kept"); err != nil {
		t.Fatalf("data lost across restart: %v", err)
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := pglocal.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s not in %s", b, dir)
		}
	}
}

// TestFindBinariesOffPath: with nothing on PATH, the binaries are found in
// the distributions' install folders. A machine with none there cannot
// test it: the test fails under CI (which installs PostgreSQL there) and
// says so in a skip elsewhere.
func TestFindBinariesOffPath(t *testing.T) {
	if len(globAll()) == 0 {
		const why = "no PostgreSQL in the usual install folders (/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /usr/local/pgsql/bin): the lookup off PATH cannot be tested here"
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	t.Setenv("PATH", "/nonexistent")
	dir, err := pglocal.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "bin" {
		t.Fatalf("unexpected dir %s", dir)
	}
}

func globAll() []string {
	var out []string
	for _, p := range []string{"/usr/lib/postgresql/*/bin/pg_ctl", "/usr/pgsql-*/bin/pg_ctl", "/usr/local/pgsql/bin/pg_ctl"} {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}
