package store_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
)

func gauge(t *testing.T, st *store.Store, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestNoSlotWaitsForOpenConnections: with every connection slot of the
// server taken (max_connections) and the pool's own connections busy,
// lookups wait for one of those connections instead of failing; the pool
// tries the server at most once per backoff meanwhile; a lookup that gets
// no connection within its deadline is still refused (UNAVAILABLE,
// ErrNoSlot); the episode is logged when it starts and when it ends, not
// per lookup; and once slots free up the pool grows again.
func TestNoSlotWaitsForOpenConnections(t *testing.T) {
	t.Parallel()
	server := testdb.PrivateCluster(t, map[string]string{"max_connections": "12", "superuser_reserved_connections": "0"})
	u, setup := testdb.NewOn(t, server)
	setup.Close()
	logs := &store.LogBuffer{}
	ctx := context.Background()
	st, err := store.Open(ctx, store.PoolConfig{URL: u, MaxConns: 8, MinConns: 3}, 10*time.Second,
		slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Pool().Close)
	st.SetSlotReportEvery(2 * time.Second)
	if st.MaxConnLifetime() != 0 {
		t.Error("the connections kept open would be closed by age")
	}
	f, _ := keys.NewFormat("ks")
	var hashes []keys.Hash
	for i := 0; i < 3; i++ {
		g, _ := f.Generate()
		if _, err := st.CreateKey(ctx, apikey.NewKey{Hash: g.Hash, Hint: g.Hint, Name: "n", Owner: "o"}); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, g.Hash)
	}
	// Busy: every connection the pool has open is in use (as by lookups in
	// flight).
	hold := func() (release func()) {
		var rs []func()
		for n := st.PoolState().Open; len(rs) < int(n); {
			r, err := st.HoldConn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		var once sync.Once
		free := func() {
			once.Do(func() {
				for _, r := range rs {
					r()
				}
			})
		}
		t.Cleanup(free) // before the pool closes: Close waits for them
		return free
	}
	// The pool opens its MinConns in the background at start.
	settled := func() bool { return st.PoolState().Open >= 3 && st.Pool().Stat().ConstructingConns() == 0 }
	for deadline := time.Now().Add(10 * time.Second); !settled() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	release := hold()
	open := st.PoolState().Open
	freeServer := testdb.FillServer(t, u, 0)
	if n := st.PoolState().Open; n != open {
		release()
		t.Fatalf("the pool has %d connections open, want the %d it held", n, open)
	}

	// 1. Ten lookups need a fourth connection: they wait, then are answered
	// on the pool's own connections once those come back.
	const lookups = 10
	errs := make(chan error, lookups)
	for i := 0; i < lookups; i++ {
		go func() {
			found, err := st.KeysByHashes(ctx, hashes)
			if err == nil && len(found) != len(hashes) {
				err = errors.New("lookup found the wrong keys")
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for gauge(t, st, "keyservice_db_slot_waits_total") < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !st.PoolState().Blocked || gauge(t, st, "keyservice_db_pool_growth_blocked") != 1 {
		t.Error("the pool does not report that it cannot grow")
	}
	time.Sleep(300 * time.Millisecond) // the waiters keep waiting meanwhile
	release()
	for i := 0; i < lookups; i++ {
		if err := <-errs; err != nil {
			t.Errorf("lookup refused while the pool's own connections could answer it: %v", err)
		}
	}
	// (Lookups beyond the pool's MaxConns wait in the pool itself, as
	// always; those that tried to open a connection waited here.)
	if n := gauge(t, st, "keyservice_db_slot_waits_total"); n < 1 || n > lookups {
		t.Errorf("slot waits = %v, want 1 to %d", n, lookups)
	}
	// One attempt per backoff (50 ms, doubling), not one per waiter and try.
	if n := gauge(t, st, "keyservice_db_slot_connects_refused_total"); n < 1 || n > 8 {
		t.Errorf("connection attempts refused by the server = %v, want 1 to 8 (a backoff, no storm)", n)
	}

	// 2. Lookups that cannot get a connection within their deadline are
	// still refused, as UNAVAILABLE.
	release = hold()
	for i := 0; i < 3; i++ {
		go func() {
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err := st.KeysByHashes(dctx, hashes)
			errs <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, apikey.ErrNoSlot) {
			t.Errorf("a lookup with no connection by its deadline: got %v, want ErrUnavailable and ErrNoSlot", err)
		}
	}
	// A caller that gives up is not a refusal.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := st.KeysByHashes(cctx, hashes); !errors.Is(err, context.Canceled) {
		t.Errorf("a lookup whose caller gave up: got %v, want context.Canceled", err)
	}
	if n := gauge(t, st, "keyservice_db_slot_refusals_total"); n != 3 {
		t.Errorf("slot refusals = %v, want 3", n)
	}
	if d := st.PoolState().Detail(); !strings.Contains(d, "no connection slot") {
		t.Errorf("pool detail = %q, want it to say the pool cannot grow", d)
	}

	// 3. Slots free up: the prober, asking once per backoff, finds one and
	// ends the episode, with no lookup needing a new connection meanwhile.
	freeServer()
	release()
	for deadline := time.Now().Add(15 * time.Second); st.PoolState().Blocked && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if st.PoolState().Blocked || gauge(t, st, "keyservice_db_pool_growth_blocked") != 0 {
		t.Fatal("the episode did not end when the server had slots again")
	}
	release = hold()
	found, err := st.KeysByHashes(ctx, hashes)
	release()
	if err != nil || len(found) != len(hashes) {
		t.Fatalf("lookup after slots freed up: %d found, %v", len(found), err)
	}
	if n := st.PoolState().Open; n <= open {
		t.Errorf("the pool did not grow: %d open", n)
	}
	// One line when it started and one when it had been over for the
	// report interval; none per lookup.
	for deadline := time.Now().Add(10 * time.Second); logs.Count("can grow again") == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n, m := logs.Count("refused a new connection"), logs.Count("can grow again"); n != 1 || m != 1 {
		t.Errorf("episode logged %d start and %d end lines, want 1 and 1:\n%s", n, m, logs.String())
	}
	if n := logs.Count(`"level":"WARN"`) + logs.Count(`"level":"INFO"`); n != 2 {
		t.Errorf("%d log lines during the episode, want 2:\n%s", n, logs.String())
	}
}
