// Package server is the composition root and the lifecycle of the
// service: New builds every part from a config.Config (closing what it
// opened if a later part fails), Serve runs them until its context ends,
// readiness follows the database and the key filter, and shutdown drains.
// The parts themselves live in their own packages: config, store,
// validate, service, middleware, gateway, ratelimit.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/credits"
	"github.com/keyservice/keyservice/internal/keyevents"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/loglimit"
	"github.com/keyservice/keyservice/internal/middleware"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/tenancy"
	"github.com/keyservice/keyservice/internal/usage"
	"github.com/keyservice/keyservice/internal/validate"
)

// Server is a configured service with its listeners open.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	store *store.Store
	reads *store.Store // KEYSERVICE_DATABASE_READ_URL's; nil: none
	// consoleSecret seals console sessions (the first seal secret).
	consoleSecret string
	// callers limits callers (the chain's); the console's sign-ins spend
	// its failed-attempt budget.
	callers   *ratelimit.Callers
	migrator  *store.Migrator
	validator *validate.Validator
	tenancy   *tenancy.Registry
	// events is the window of changes WatchKeyEvents streams follow;
	// streams bounds the streams open, over gRPC and REST together.
	events  *keyevents.Log
	streams *middleware.Streams
	// credits spends keys' and owners' credits from leases; usage counts
	// answers for the history. Both are flushed on shutdown.
	credits *credits.Ledger
	usage   *usage.Recorder
	closers closers // what New opened, closed in reverse by Serve

	grpc    *grpc.Server
	http    *http.Server
	health  *health.Server
	grpcLis net.Listener
	// grpcLate is grpcLis before its caps: it listens once the replica is
	// first ready.
	grpcLate *lateListener
	grpcOpen bool // grpcLate listens (setReady, which readiness checks call one at a time)
	httpLis  net.Listener
	// debug: pprof and runtime metrics on loopback (debug.go); nil: off.
	debug    *http.Server
	debugLis net.Listener
	ready    atomic.Bool
	notReady atomic.Value // string: why not ready
	dbOK     atomic.Bool
	// stopping is set when shutdown begins: from then on no readiness
	// check in flight may report the replica ready again.
	stopping atomic.Bool
	// migrated is closed once --migrate has applied the migrations (at
	// once without --migrate).
	migrated chan struct{}
	// readyCh is closed the first time the service is ready.
	readyCh   chan struct{}
	readyOnce sync.Once
	readyMu   sync.Mutex // setReady
}

// Option changes how New builds a Server (for tests and the bench tool).
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	validator      func(Deps) service.Validator
}

// Deps are the parts a validator given to WithValidator may use.
type Deps struct {
	Store  *store.Store
	Format keys.Format
}

// WithValidator makes Validate judge keys with the validator newV returns
// instead of the fast path (validate.Validator, which still runs: it keeps
// readiness and admin writes as in production). It is the one seam for the
// bench tool's baselines (internal/bench); serve never uses it.
func WithValidator(newV func(Deps) service.Validator) Option {
	return func(o *options) { o.validator = newV }
}

// WithTracerProvider traces calls with tp (tests use an in-memory
// exporter); without it, tracing follows the OTEL_* environment.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// Run builds a Server from cfg and serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) error {
	s, err := New(ctx, cfg, log, opts...)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// New validates cfg (the one place serve and dev do: callers need not),
// opens the pool (without waiting for the database) and the listeners, and
// wires the service. When it fails, everything it had opened is closed
// again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	// No kind of line is written more than a few times a second, whoever
	// causes it (internal/loglimit).
	log = loglimit.New(log, reg, nil)
	s := &Server{cfg: cfg, log: log, health: health.NewServer(), readyCh: make(chan struct{}), migrated: make(chan struct{})}
	if !cfg.Migrate {
		close(s.migrated)
	}
	s.notReady.Store("starting")
	defer func() {
		if err != nil {
			s.closers.close()
		}
	}()
	format, err := cfg.KeyFormat()
	if err != nil {
		return nil, err
	}
	// The lookups' statements and one admin write always have a connection
	// open, even if the database later runs out of connection slots.
	poolOn := func(url string) store.PoolConfig {
		return store.PoolConfig{URL: url, MaxConns: int32(cfg.DBMaxConns), MinConns: int32(cfg.LookupConcurrency + 1),
			StatementTimeout: cfg.DBStatementTimeout, ConnectTimeout: cfg.DBConnectTimeout}
	}
	if s.store, err = store.Open(ctx, poolOn(cfg.DatabaseURL), cfg.DBAcquireTimeout, log); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool := s.store.Pool()
	s.closers.add(pool.Close)
	if s.migrator, err = store.NewMigrator(pool); err != nil {
		return nil, err
	}
	s.closers.add(func() { _ = s.migrator.Close() })
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(s.store.Collectors()...)
	if cfg.DatabaseReadURL != "" {
		// Read replicas: a pool of their own, as large as the lookups need.
		if s.reads, err = store.Open(ctx, poolOn(cfg.DatabaseReadURL), cfg.DBAcquireTimeout, log); err != nil {
			return nil, fmt.Errorf("KEYSERVICE_DATABASE_READ_URL: %w", err)
		}
		s.closers.add(s.reads.Pool().Close)
	}
	s.events = keyevents.New(0)
	if s.validator, err = validatorFromConfig(cfg, format, s.store, s.reads, log, reg, s.events); err != nil {
		return nil, err
	}
	if s.tenancy, err = tenancy.New(tenancy.Config{
		Store:     s.store,
		Format:    format,
		Bootstrap: tenancy.Bootstrap(cfg.AdminTokens, cfg.AdminNames, cfg.AdminPermissions, cfg.CallerTokens),
		OnChange:  func(st *tenancy.State) { s.validator.SetKeyspaces(st.Format, st.Spaces) },
		// Keyspaces, credentials or owners (and so which keys have an owner
		// budget) changed: callers drop the answers they cached.
		Changed:   func() { s.events.Publish(keyevents.Tenancy, nil, uuid.Nil) },
		SyncEvery: cfg.SyncInterval,
		Log:       log,
	}); err != nil {
		return nil, err
	}
	if len(cfg.AdminTokens) == 0 {
		log.Warn("no admin token configured (KEYSERVICE_ADMIN_TOKENS): only stored credentials may make admin calls")
	}
	// Page tokens and the answers kept for retries are sealed with keys
	// derived from a secret every replica shares and the database does not
	// hold: KEYSERVICE_SEAL_KEY, else the admin tokens.
	sealSecrets := cfg.AdminTokens
	if cfg.SealKey != "" {
		sealSecrets = []string{"seal-key:" + cfg.SealKey}
	}
	if len(sealSecrets) > 0 {
		// The same on every replica whatever the tokens' order.
		s.consoleSecret = slices.Min(sealSecrets)
	}
	if len(sealSecrets) == 0 {
		log.Warn("neither KEYSERVICE_SEAL_KEY nor an admin token is configured: writes with a request_id are refused (their answers could not be sealed)")
	}
	keyLimits, err := s.keyLimits(reg)
	if err != nil {
		return nil, err
	}
	s.credits = credits.New(credits.Config{Store: s.store, LeaseMax: int64(cfg.CreditLease), IdleReturn: cfg.CreditIdleReturn, Log: log, Registry: reg})
	s.usage = usage.New(usage.Config{Store: s.store, FlushEvery: cfg.UsageFlushInterval, Log: log, Registry: reg,
		MinuteRetention: cfg.UsageMinuteRetention, HourRetention: cfg.UsageHourRetention, DayRetention: cfg.UsageDayRetention})
	var judge service.Validator = s.validator
	if o.validator != nil {
		judge = o.validator(Deps{Store: s.store, Format: format})
	}
	svc := service.New(service.Config{
		Keys:           s.validator.AdminKeys(s.store),
		Validator:      judge,
		Tenancy:        s.tenancy,
		Tenants:        s.store,
		Budgets:        s.store,
		Credits:        s.credits,
		Usage:          s.usage,
		UsageReader:    s.usageReader(),
		DefaultFormat:  defaultFormat(cfg.DefaultKeyFormat),
		KeyLimits:      keyLimits,
		DefaultLimit:   cfg.KeyLimit(),
		PageTokenKey:   service.PageTokenKey(sealSecrets),
		Idempotency:    service.Idempotency{Key: service.IdempotencyKey(sealSecrets), Window: cfg.IdempotencyWindow, Off: len(sealSecrets) == 0},
		TrustedProxies: cfg.TrustedProxies,
		CallerBudget:   cfg.DefaultBudget(),
		CallerLimits:   cfg.CallerLimits,
		ViewCacheSize:  cfg.PositiveSize + cfg.NegativeSize,
		Events:         s.events,
		ClientCache:    cfg.ClientCache,
		Registry:       reg,
	})
	tp := o.tracerProvider
	if tp == nil {
		var shutdown func(context.Context) error
		if tp, shutdown, err = tracerProviderFromEnv(ctx); err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_*: %w", err)
		}
		s.closers.add(func() { s.flushTraces(shutdown) })
	}
	intercept := s.chain(reg, tp)
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	s.streams = middleware.NewStreams(middleware.StreamsPerAddr, middleware.StreamsTotal)
	s.grpc = s.newGRPCServer(svc, intercept, tlsCfg)
	if s.http, err = s.newHTTPServer(ctx, svc, middleware.Bind(svc, intercept), reg, tlsCfg); err != nil {
		return nil, err
	}
	useForLibraryLogs(log)
	// Bound now, listening once ready (latelisten.go).
	if s.grpcLate, err = bindLate(cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("KEYSERVICE_GRPC_ADDR: %w", err)
	}
	s.grpcLis = s.grpcLate
	s.closers.add(func() { _ = s.grpcLis.Close() })
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("KEYSERVICE_HTTP_ADDR: %w", err)
	}
	s.closers.add(func() { _ = s.httpLis.Close() })
	if err := s.capListeners(reg); err != nil {
		return nil, err
	}
	if err := s.listenDebug(cfg.DebugAddr); err != nil {
		return nil, fmt.Errorf("KEYSERVICE_DEBUG_ADDR: %w", err)
	}
	return s, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// validatorFromConfig builds the validation path (the key validator, not a
// client of the Validate RPC) from the settings.
func validatorFromConfig(cfg config.Config, format keys.Format, st, reads *store.Store, log *slog.Logger, reg prometheus.Registerer, events *keyevents.Log) (*validate.Validator, error) {
	vc := validate.Config{Format: format, Store: st, Log: log, Registry: reg, Tuning: cfg.Tuning, Events: events}
	if reads != nil {
		vc.Reads = reads
	}
	return validate.New(vc)
}

func defaultFormat(name string) keyservicev1.Format {
	if name == "signed" {
		return keyservicev1.Format_FORMAT_SIGNED
	}
	return keyservicev1.Format_FORMAT_CHECKSUM
}

// usageReader is where usage history is read: the read replicas when set
// (a chart a moment behind is no wrong answer), else the primary.
func (s *Server) usageReader() service.UsageReader {
	if s.reads != nil {
		return s.reads
	}
	return s.store
}
