package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

// recorder is a apikey.ChangeHandler that hands every call to the test.
type recorder struct {
	events   chan apikey.Event
	lost     chan struct{}
	caughtUp chan struct{}
}

func newRecorder() *recorder {
	return &recorder{events: make(chan apikey.Event, 16), lost: make(chan struct{}, 16), caughtUp: make(chan struct{}, 16)}
}

func (r *recorder) Changed(e apikey.Event)        { r.events <- e }
func (r *recorder) StreamLost()                   { r.lost <- struct{}{} }
func (r *recorder) CatchUp(context.Context) error { r.caughtUp <- struct{}{}; return nil }
func (r *recorder) ListenError(error)             {}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		panic("unreachable")
	}
}

// TestListenDeliversEventsAndReconnects: the store's listener delivers
// events, and when its connection is killed it tells the handler the
// stream was lost, reconnects, asks for a catch-up, and delivers again.
func TestListenDeliversEventsAndReconnects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := newRecorder()
	done := make(chan error, 1)
	go func() { done <- b.store.Listen(ctx, r) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen returned %v after its context ended", err)
		}
	}()
	receive(t, r.lost, "first StreamLost (connecting)")
	receive(t, r.caughtUp, "first CatchUp")
	g, _ := b.create(t, "acme")
	if e := receive(t, r.events, "created event"); e.Kind != apikey.EventCreated || e.Hash != g.Hash {
		t.Fatalf("event %+v", e)
	}

	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", store.ListenApplicationName); err != nil {
		t.Fatal(err)
	}
	receive(t, r.lost, "StreamLost after the connection was killed")
	receive(t, r.caughtUp, "CatchUp after the reconnect")
	g2, _ := b.create(t, "acme")
	if e := receive(t, r.events, "event after the reconnect"); e.Hash != g2.Hash {
		t.Fatalf("event %+v", e)
	}
}

// TestListenKeepsTryingWhileTheDatabaseRefusesConnections: when the LISTEN
// connection is lost and new connections are refused, the listener
// reports each failed attempt and keeps trying (with backoff) until the
// database takes connections again; then it catches up and delivers.
func TestListenKeepsTryingWhileTheDatabaseRefusesConnections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := newRecorder()
	errs := make(chan error, 64)
	h := &erring{recorder: r, errs: errs}
	done := make(chan error, 1)
	go func() { done <- b.store.Listen(ctx, h) }()
	defer func() { cancel(); <-done }()
	receive(t, r.caughtUp, "first CatchUp")

	adm, err := pgx.Connect(ctx, testdb.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the database takes connections again afterwards.
	defer adm.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS true")
	// Refuse new connections to the test database, then kill the listener's.
	if _, err := adm.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", store.ListenApplicationName); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		receive(t, errs, "a failed reconnect")
	}
	if _, err := adm.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	receive(t, r.caughtUp, "CatchUp once connections are allowed again")
	g, _ := b.create(t, "acme")
	if e := receive(t, r.events, "event after the outage"); e.Hash != g.Hash {
		t.Fatalf("event %+v", e)
	}
}

// erring is a recorder that also hands listen errors to the test.
type erring struct {
	*recorder
	errs chan error
}

func (e *erring) ListenError(err error) {
	select {
	case e.errs <- err:
	default:
	}
}
