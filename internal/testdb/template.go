package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/migrations"
)

// A migrated database is a copy of a template database that was migrated
// once: CREATE DATABASE … TEMPLATE copies its pages, where migrating a fresh
// database runs every migration again (0.43 s a database against 0.10 s
// here, BenchmarkNew).
//
// The template is named after a hash of the migrations, so the test
// processes of every package (go test runs them side by side), and later
// runs, share it while the migrations are unchanged, and a changed
// migration gets a template of its own. It is built under another name and
// renamed when complete, so a name that exists is a finished template; an
// advisory lock keeps concurrent processes from building it twice. It takes
// no connections (ALLOW_CONNECTIONS false): CREATE DATABASE … TEMPLATE
// fails while anyone is connected to the template. Templates of earlier
// migrations stay on the server (about 8 MB each); remove one with
// ALTER DATABASE kstmpl_… IS_TEMPLATE false, then DROP DATABASE.

// recipe changes when the way templates are made changes, to retire the
// templates made the old way.
const recipe = "keyservice testdb template v1\n"

var templateName = sync.OnceValue(func() string {
	name, err := templateNameFor(migrations.FS)
	if err != nil {
		panic(fmt.Sprintf("testdb: hashing the migrations: %v", err))
	}
	return name
})

// templateNameFor names the template of the migrations in fsys.
func templateNameFor(fsys fs.FS) (string, error) {
	h := sha256.New()
	io.WriteString(h, recipe)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return "kstmpl_" + hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// templates remembers, per server, the template this process made or found.
var templates sync.Map // server URL -> func() (string, error)

// templateOn returns the name of the migrated template on the server of
// the URL server, making it on first use.
func templateOn(server string) (string, error) {
	f, _ := templates.LoadOrStore(server, sync.OnceValues(func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		return ensureTemplate(ctx, server, templateName())
	}))
	return f.(func() (string, error))()
}

// ensureTemplate makes the template name on server unless it exists.
func ensureTemplate(ctx context.Context, server, name string) (string, error) {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	// Session-level, released when conn closes if not before.
	sum := sha256.Sum256([]byte(name))
	lock := int64(binary.BigEndian.Uint64(sum[:8]))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return "", fmt.Errorf("waiting for the template lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lock)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Builds left by a process that died while holding the lock.
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", name+"_b")
	if err != nil {
		return "", err
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	for _, s := range stale {
		if err := dropBuild(ctx, conn, s); err != nil {
			return "", fmt.Errorf("dropping the unfinished template %s: %w", s, err)
		}
	}
	return buildTemplate(ctx, conn, server, name)
}

// buildTemplate migrates a new database and renames it to name. When name
// exists by then (made meanwhile by a process that did not take the lock),
// it drops its own and uses that one.
func buildTemplate(ctx context.Context, conn *pgx.Conn, server, name string) (string, error) {
	var r [4]byte
	_, _ = rand.Read(r[:])
	build := name + "_b" + hex.EncodeToString(r[:])
	id := pgx.Identifier{build}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", fmt.Errorf("creating the template: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = dropBuild(context.Background(), conn, build)
		}
	}()
	u, err := withDatabase(server, build)
	if err != nil {
		return "", err
	}
	if err := migrate(ctx, u); err != nil {
		return "", fmt.Errorf("migrating the template: %w", err)
	}
	// Postgres waits (up to 5 s) for the migration's sessions to end.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("closing the template to connections: %w", err)
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+id+" RENAME TO "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	// Another build got there first: duplicate_database when it had
	// committed before, or, when both renames ran at once, the catalog's
	// own unique index on database names.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || (pgErr.Code == "23505" && strings.Contains(pgErr.ConstraintName+pgErr.Message, "pg_database_datname_index"))) {
		return name, nil // the deferred dropBuild removes ours
	}
	if err != nil {
		return "", fmt.Errorf("naming the template: %w", err)
	}
	done = true
	return name, nil
}

// dropBuild drops the unfinished template name (a template database
// cannot be dropped until it is marked as none).
func dropBuild(ctx context.Context, conn *pgx.Conn, name string) error {
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" WITH IS_TEMPLATE false"); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "DROP DATABASE "+id+" WITH (FORCE)")
	return err
}

// migrate applies the migrations to the database at u and closes its
// connections.
func migrate(ctx context.Context, u string) error {
	return store.Migrate(ctx, store.PoolConfig{URL: u}, slog.New(slog.DiscardHandler))
}

// withDatabase is the URL server with its database replaced by name.
func withDatabase(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the server URL must be a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}
