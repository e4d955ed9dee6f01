// Package bench measures keyservice: throughput, latency and database
// lookups per scenario over gRPC and REST, against two baselines measured
// in the same run (a "ceiling" handler that answers at once, and the
// "naive" design where every Validate is a pooled query), plus fault runs.
// The service runs in this process; load arrives over real loopback
// sockets.
package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/netdelay"
	"github.com/keyservice/keyservice/internal/pglocal"
	"github.com/keyservice/keyservice/internal/store"
)

// Scenarios, transports and modes.
var (
	AllScenarios  = []string{"hot", "cold", "malformed", "forged", "unknown", "revoked", "mixed", "churn", "restart", "credits"}
	AllTransports = []string{"grpc", "rest"}
	AllModes      = []string{"keyservice", "ceiling", "naive"}
)

// Config is one bench run.
type Config struct {
	DatabaseURL string        // empty: a throwaway cluster with pg_stat_statements
	Keys        int           // keys seeded
	Duration    time.Duration // measured time per scenario, transport and mode
	Warmup      time.Duration // unmeasured load before each measurement
	Conns       int           // gRPC connections (REST: one per worker)
	Workers     int           // concurrent callers
	Scenarios   []string
	Transports  []string
	Modes       []string
	DBLatency   time.Duration // added each way between the service and Postgres
	Faults      bool          // run the fault scenarios instead
	Fleet       bool          // run the fleet scenario instead (fleet.go)
	Startup     []int         // run the start-up step instead, on tables of these sizes
	// Target is a service already running elsewhere
	// ("grpc=HOST:PORT,http=HOST:PORT"): its keys are made through the
	// admin API (AdminToken), the mode is keyservice only, and scenarios
	// that need the service in this process (restart) are not run.
	Target     string
	AdminToken string
	TLS        bool
	CAFile     string
	Trials     int // propagation and credential revocation trials (faults)
	Log        *slog.Logger
}

// Defaults returns the default run.
func Defaults() Config {
	return Config{
		Keys: 100_000, Duration: 5 * time.Second, Warmup: time.Second, Conns: 4, Workers: 64,
		Scenarios: AllScenarios, Transports: AllTransports, Modes: AllModes, Trials: 200,
	}
}

// Check explains a bad setting.
func (c Config) Check() error {
	switch {
	case c.Keys < 2000 || c.Keys > 10_000_000:
		return fmt.Errorf("--keys must be between 2000 and 10000000, got %d", c.Keys)
	case c.Duration <= 0 || c.Warmup < 0:
		return errors.New("--duration must be positive and --warmup not negative")
	case c.Conns < 1 || c.Workers < 1:
		return errors.New("--conns and --workers must be at least 1")
	case c.DBLatency < 0 || c.DBLatency > time.Second:
		return errors.New("--db-latency must be between 0 and 1s")
	}
	if c.Target == "" && (c.TLS || c.CAFile != "") {
		return errors.New("--tls and --ca-file are for --target (the service in this process speaks plaintext)")
	}
	if c.Target != "" {
		if _, err := parseTarget(c.Target); err != nil {
			return err
		}
		for _, m := range c.Modes {
			if m != "keyservice" {
				return errors.New("--target runs the keyservice mode only: the baselines need the service in this process (--modes keyservice)")
			}
		}
		for _, s := range c.Scenarios {
			if s == "restart" {
				return errors.New("--target cannot run the restart scenario: it restarts the service in this process")
			}
		}
		if len(c.Startup) > 0 {
			return errors.New("--target and --startup do not go together")
		}
	}
	for i, n := range c.Startup {
		if n < 1000 || n > 100_000_000 || (i > 0 && n <= c.Startup[i-1]) {
			return errors.New("--startup takes increasing sizes between 1000 and 100000000, such as 1000000,10000000")
		}
	}
	for _, s := range c.Scenarios {
		if !contains(AllScenarios, s) {
			return fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(AllScenarios, ", "))
		}
	}
	for _, t := range c.Transports {
		if !contains(AllTransports, t) {
			return fmt.Errorf("unknown transport %q", t)
		}
	}
	for _, m := range c.Modes {
		if !contains(AllModes, m) {
			return fmt.Errorf("unknown mode %q", m)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// env is the database and the keys a run works on.
type env struct {
	cfg       Config
	log       *slog.Logger
	cluster   *pglocal.Cluster // nil with DatabaseURL
	adminURL  string           // database to CREATE/DROP from
	dbURL     string           // the bench database, direct
	svcURL    string           // what the service dials (through the latency proxy if any)
	proxy     *netdelay.Proxy
	dbName    string
	pgss      bool // pg_stat_statements available
	format    keys.Format
	active    []string // secrets of active keys
	activeSet map[string]struct{}
	revoked   []string
	unknown   []string
	malformed []string
	forged    []string // well-shaped signed keys with wrong tags
	machine   Machine
	target    endpoint // --target: nil when the service runs in this process
}

// Machine describes where the run happened.
type Machine struct {
	Cores    int    `json:"cores"`
	MemoryGB int    `json:"memory_gb"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
	CPU      string `json:"cpu"`
}

func setup(ctx context.Context, cfg Config) (*env, error) {
	e := &env{cfg: cfg, log: cfg.Log}
	e.format, _ = keys.NewFormat(keys.DefaultPrefix)
	if cfg.DatabaseURL == "" {
		dir, err := os.MkdirTemp("", "keybench-")
		if err != nil {
			return nil, err
		}
		e.log.Info("starting a throwaway PostgreSQL cluster (with pg_stat_statements)", "dir", dir)
		c, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(dir, "data"), Ephemeral: true,
			Settings: map[string]string{"shared_preload_libraries": "pg_stat_statements", "max_connections": "300"}})
		if err != nil {
			return nil, err
		}
		e.cluster = c
		e.adminURL = c.URL("postgres")
	} else {
		e.adminURL = cfg.DatabaseURL
	}
	var b [4]byte
	_, _ = crand.Read(b[:])
	e.dbName = "keybench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("connecting: %w", err)
	}
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&e.machine.Postgres)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+e.dbName)
	conn.Close(ctx)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("creating the bench database: %w", err)
	}
	u, err := url.Parse(e.adminURL)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()
	e.svcURL = e.dbURL
	if cfg.DBLatency > 0 {
		p, err := netdelay.Start(u.Host, cfg.DBLatency)
		if err != nil {
			e.close()
			return nil, err
		}
		e.proxy = p
		su := *u
		su.Host = p.Addr()
		e.svcURL = su.String()
	}
	seed := e.migrateAndSeed
	if len(cfg.Startup) > 0 {
		seed = e.migrate // the start-up step seeds its own keys
	}
	if err := seed(ctx); err != nil {
		e.close()
		return nil, err
	}
	e.machine.fill()
	return e, nil
}

func (e *env) close() {
	if e.proxy != nil {
		e.proxy.Close()
	}
	if e.dbName != "" && e.adminURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if conn, err := pgx.Connect(ctx, e.adminURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.dbName+" WITH (FORCE)")
			conn.Close(ctx)
		}
		cancel()
	}
	if e.cluster != nil {
		_ = e.cluster.Stop(context.Background())
		os.RemoveAll(filepath.Dir(e.cluster.Dir()))
	}
}

// migrate creates the schema.
func (e *env) migrate(ctx context.Context) error {
	return store.Migrate(ctx, store.PoolConfig{URL: e.dbURL}, slog.New(slog.DiscardHandler))
}

// migrateAndSeed creates the schema and N keys (COPY), revokes 1,000 of
// them, and prepares unknown and malformed keys.
func (e *env) migrateAndSeed(ctx context.Context) error {
	if err := e.migrate(ctx); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err == nil {
		var n int
		e.pgss = pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements").Scan(&n) == nil
	}
	start := time.Now()
	n := e.cfg.Keys
	secrets := make([]string, n)
	rows := make([][]any, n)
	for i := range rows {
		g, err := e.format.Generate()
		if err != nil {
			return err
		}
		secrets[i] = g.Secret
		rows[i] = []any{g.Hash[:], g.Hint, fmt.Sprintf("bench-%d", i), fmt.Sprintf("owner-%d", i%1000)}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"api_keys"}, []string{"key_hash", "hint", "name", "owner"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("seeding keys: %w", err)
	}
	// The last 1,000 keys are revoked.
	revoked := min(1000, n/2)
	hashes := make([][]byte, 0, revoked)
	for _, s := range secrets[n-revoked:] {
		h := keys.HashOf(s)
		hashes = append(hashes, h[:])
	}
	if _, err := pool.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE key_hash = ANY($1)", hashes); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "ANALYZE api_keys"); err != nil {
		return err
	}
	e.useKeys(secrets[:n-revoked], secrets[n-revoked:], 400_000)
	e.log.Info("seeded", "keys", n, "revoked", revoked, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// useKeys records the seeded keys and makes the unknown, malformed and
// forged ones the scenarios send.
func (e *env) useKeys(active, revoked []string, unknown int) {
	e.active, e.revoked = active, revoked
	e.activeSet = make(map[string]struct{}, len(active))
	for _, k := range active {
		e.activeSet[k] = struct{}{}
	}
	e.unknown = unknownKeys(e.format, unknown)
	e.malformed = malformedKeys(e.format, 30_000, rand.New(rand.NewPCG(1, 2)))
	e.forged = forgedKeys(30_000, rand.New(rand.NewPCG(3, 4)))
}

// isActive reports whether key is one of the seeded active keys.
func (e *env) isActive(key string) bool {
	_, ok := e.activeSet[key]
	return ok
}

// lookups counts the statements that read keys for Validate
// (pg_stat_statements), or -1 when it is not available.
func (e *env) lookups(ctx context.Context) int64 {
	if !e.pgss {
		return -1
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%name: GetKey%ByHash%'").Scan(&n); err != nil {
		return -1
	}
	return n
}
