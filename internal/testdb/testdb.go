// Package testdb gives each test a fresh, migrated PostgreSQL database on a
// real server: TEST_DATABASE_URL or DATABASE_URL when set, else
// 127.0.0.1:5432 when it answers, else a throwaway cluster started from the
// local binaries (stopped by Main). It never skips: a test that cannot get a
// database fails. Migrated databases are copies of a template database
// migrated once per server and schema (template.go).
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/pglocal"
	"github.com/keyservice/keyservice/internal/store"
)

var (
	once     sync.Once
	adminURL string // URL of a database on the server from which to CREATE DATABASE
	setupErr error
	cluster  *pglocal.Cluster
	tmpDir   string
	shared   atomic.Pointer[string] // adminURL, for readers that must not start the search
)

// drops are the databases of ended tests being dropped. Under Main, those
// on the shared server are dropped in the background, a few at a time, and
// Main waits for them: DROP DATABASE waits for a checkpoint, which drops at
// once share, and a test need not wait for it.
var drops struct {
	async bool // set by Main before the tests run
	wg    sync.WaitGroup
	slots chan struct{}
	mu    sync.Mutex
	errs  []error
}

// Main runs the package's tests, drops their databases and stops the
// throwaway cluster, if one was started. Use it from TestMain.
func Main(m *testing.M) {
	drops.async = true
	drops.slots = make(chan struct{}, 4)
	code := m.Run()
	drops.wg.Wait()
	for _, err := range drops.errs {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		if code == 0 {
			code = 1
		}
	}
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testdb: stopping cluster:", err)
		}
		cancel()
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// ServerURL returns the URL of a database on the server the tests use,
// starting a throwaway cluster when needed.
func ServerURL(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		adminURL, setupErr = findServer()
		shared.Store(&adminURL)
	})
	if setupErr != nil {
		t.Fatalf("testdb: no PostgreSQL for the tests: %v", setupErr)
	}
	return adminURL
}

func findServer() (string, error) {
	for _, env := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if u := os.Getenv(env); u != "" {
			if err := ping(u); err != nil {
				return "", fmt.Errorf("%s is set but does not answer: %w", env, err)
			}
			return u, nil
		}
	}
	local := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	if ping(local) == nil {
		return local, nil
	}
	dir, err := os.MkdirTemp("", "keyservice-testdb-")
	if err != nil {
		return "", err
	}
	tmpDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir + "/data", Ephemeral: true})
	if err != nil {
		return "", fmt.Errorf("nothing answers on 127.0.0.1:5432 and a throwaway cluster did not start: %w", err)
	}
	cluster = c
	return c.URL("postgres"), nil
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// The tests of several packages share one server (go test runs two
// packages at once here) and its max_connections (100 by default): a
// package whose tests each run a replica or three can take most of it, and
// the other package's next connection is then refused (SQLSTATE 53300).
// So a test's database is created only when the server has headroom free
// connection slots (waiting up to headroomWait for other tests to end), and
// the connections testdb itself opens retry while the server is full. The
// gate is advisory (two processes can pass it at once), and after the wait
// the test goes ahead: it may then fail on a refused connection, as it
// would have without the gate.
const (
	headroom     = 30 // a test with three replicas and its own pool, with margin
	headroomWait = 2 * time.Minute
)

// connectWithRoom connects to server once it has headroom free
// connection slots, or once headroomWait has passed.
func connectWithRoom(ctx context.Context, t testing.TB, server string) (*pgx.Conn, error) {
	deadline := time.Now().Add(headroomWait)
	logged := false
	for {
		conn, err := connectRetrying(ctx, server)
		if err != nil {
			return nil, err
		}
		var free int
		err = conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int
			- (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')`).Scan(&free)
		if err != nil || free >= headroom || time.Now().After(deadline) {
			return conn, nil // the gate is advisory: a failed count goes ahead
		}
		conn.Close(context.Background())
		if !logged {
			t.Logf("testdb: the server has %d free connection slots (want %d); waiting for other tests to end", free, headroom)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200*time.Millisecond + time.Duration(mrand.IntN(200))*time.Millisecond):
		}
	}
}

// connectRetrying connects to u, retrying while the server refuses for
// want of a connection slot (SQLSTATE 53300) until ctx ends.
func connectRetrying(ctx context.Context, u string) (*pgx.Conn, error) {
	for {
		conn, err := pgx.Connect(ctx, u)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "53300" {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100*time.Millisecond + time.Duration(mrand.IntN(100))*time.Millisecond):
		}
	}
}

// NewDatabase creates an empty database for this test, dropped when the
// test ends, and returns its URL. It is not migrated.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return NewDatabaseOn(t, ServerURL(t))
}

// NewDatabaseOn is NewDatabase on the server of the URL server (a
// database there from which to CREATE DATABASE).
func NewDatabaseOn(t testing.TB, server string) string {
	t.Helper()
	return createDatabase(t, server, "")
}

// createDatabase creates a database for this test, a copy of template
// when one is named, and drops it when the test ends.
func createDatabase(t testing.TB, server, template string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "kstest_" + hex.EncodeToString(b[:])
	u, err := withDatabase(server, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+headroomWait)
	defer cancel()
	conn, err := connectWithRoom(ctx, t, server)
	if err != nil {
		t.Fatalf("testdb: connecting: %v", err)
	}
	defer conn.Close(context.Background())
	create := "CREATE DATABASE " + name
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatalf("testdb: creating database: %v", err)
	}
	t.Cleanup(func() {
		if _, gone := throwaway.Load(server); gone {
			return // the whole cluster goes (a test may have killed it)
		}
		if u := shared.Load(); !drops.async || u == nil || server != *u { // a private cluster may stop first
			if err := dropDatabase(server, name); err != nil {
				t.Errorf("testdb: %v", err)
			}
			return
		}
		drops.wg.Add(1)
		go func() {
			defer drops.wg.Done()
			drops.slots <- struct{}{}
			err := dropDatabase(server, name)
			<-drops.slots
			if err != nil {
				drops.mu.Lock()
				drops.errs = append(drops.errs, err)
				drops.mu.Unlock()
			}
		}()
	})
	return u
}

func dropDatabase(server, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connectRetrying(ctx, server)
	if err != nil {
		return fmt.Errorf("connecting to drop %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping %s: %w", name, err)
	}
	return nil
}

// New returns the URL of a fresh migrated database of this test's own
// (dropped when the test ends) and a pool on it, closed when the test
// ends.
func New(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	return NewOn(t, ServerURL(t))
}

// NewOn is New on the server of the URL server. The database is a copy of
// a template migrated once per server and schema (see template.go).
func NewOn(t testing.TB, server string) (string, *pgxpool.Pool) {
	t.Helper()
	tmpl, err := templateOn(server)
	if err != nil {
		t.Fatalf("testdb: the migrated template: %v", err)
	}
	u := createDatabase(t, server, tmpl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		t.Fatalf("testdb: pool: %v", err)
	}
	store.UseTypes(cfg) // as the service's own pools
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return u, pool
}

// PrivateCluster starts a throwaway cluster of this test's own with the
// given server settings (for example a small max_connections), stopped
// when the test ends, and returns the URL of its postgres database.
func PrivateCluster(t testing.TB, settings map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: t.TempDir() + "/data", Ephemeral: true, Settings: settings})
	if err != nil {
		t.Fatalf("testdb: starting a private cluster: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("testdb: stopping the private cluster: %v", err)
		}
	})
	return c.URL("postgres")
}

// throwaway holds the URLs of private clusters whose databases are not
// dropped one by one: the cluster is deleted with the test.
var throwaway sync.Map

// Replicated starts a throwaway primary cluster of this test's own and a
// streaming standby of it (pg_basebackup -R), both stopped when the test
// ends (whichever is still running).
func Replicated(t testing.TB) (primary, standby *pglocal.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	settings := map[string]string{"wal_level": "replica", "max_wal_senders": "10", "hot_standby_feedback": "on"}
	primary, err := pglocal.Start(ctx, pglocal.Options{Dir: dir + "/primary", Ephemeral: true, Settings: settings})
	if err != nil {
		t.Fatalf("testdb: starting the primary: %v", err)
	}
	t.Cleanup(func() { stopQuietly(primary) })
	if standby, err = primary.Standby(ctx, dir+"/standby"); err != nil {
		t.Fatalf("testdb: making the standby: %v", err)
	}
	t.Cleanup(func() { stopQuietly(standby) })
	throwaway.Store(primary.URL("postgres"), true)
	return primary, standby
}

func stopQuietly(c *pglocal.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Kill(ctx) // stopped already, or promoted and stopped: either is fine
}

// FillServer opens connections to u until the server refuses one for want
// of a connection slot (SQLSTATE 53300), then closes leave of them again;
// it closes the rest when the test ends or when free is called.
func FillServer(t testing.TB, u string, leave int) (free func()) {
	t.Helper()
	var hogs []*pgx.Conn
	free = func() {
		for _, c := range hogs {
			c.Close(context.Background())
		}
		hogs = nil
	}
	t.Cleanup(free)
	for i := 0; i < 1000; i++ {
		c, err := pgx.Connect(context.Background(), u)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "53300" {
				t.Fatalf("testdb: filling the server: want SQLSTATE 53300, got %v", err)
			}
			for ; leave > 0 && len(hogs) > 0; leave-- {
				hogs[len(hogs)-1].Close(context.Background())
				hogs = hogs[:len(hogs)-1]
			}
			return free
		}
		hogs = append(hogs, c)
	}
	t.Fatal("testdb: the server never ran out of connection slots")
	return nil
}
