// Package server owns the running service: the KeyService handlers, the
// interceptor chain shared by gRPC and REST, the in-process gateway, health
// and readiness, and the lifecycle (Run: serve until the context ends, then
// drain).
package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/keyservice/keyservice/api"
	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// Server is a configured service with its listeners open.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	migrator  *store.Migrator
	validator *validate.Validator
	registry  *prometheus.Registry
	redis     *redis.Client

	tracingShutdown func(context.Context) error
	grpc            *grpc.Server
	http            *http.Server
	health          *health.Server
	grpcLis         net.Listener
	httpLis         net.Listener
	ready           atomic.Bool
	notReady        atomic.Value // string: why not ready
	dbOK            atomic.Bool
}

// Option changes how New builds a Server (for tests and the bench tool).
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	naive          bool
	ceiling        bool
}

// WithNaiveValidation turns the fast path off (every Validate is a pooled
// query): the bench tool's "naive" baseline, never for production.
func WithNaiveValidation() Option { return func(o *options) { o.naive = true } }

// WithCeilingValidation makes Validate answer VALID at once, after the
// interceptor chain and request checks: the bench tool's "ceiling", the
// cost of the gRPC/REST stack alone. Never for production.
func WithCeilingValidation() Option { return func(o *options) { o.ceiling = true } }

// WithTracerProvider traces calls with tp (tests use an in-memory
// exporter); without it, tracing follows the OTEL_* environment.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// Run builds a Server from cfg and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) error {
	s, err := New(ctx, cfg, log, opts...)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// New validates cfg, opens the pool (without waiting for the database) and
// the listeners, and wires the service.
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	format, err := keys.NewFormat(cfg.KeyPrefix)
	if err != nil {
		return nil, err
	}
	pool, err := store.OpenPool(ctx, store.PoolConfig{
		URL:              cfg.DatabaseURL,
		MaxConns:         int32(cfg.DBMaxConns),
		StatementTimeout: cfg.DBStatementTimeout,
		ConnectTimeout:   cfg.DBConnectTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	migrator, err := store.NewMigrator(pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	st := store.New(pool, cfg.DBAcquireTimeout)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newPoolCollector(pool))
	validator, err := validate.New(validate.Config{
		Format:             format,
		Store:              st,
		Log:                log,
		Registry:           reg,
		FilterFPRate:       cfg.FilterFPRate,
		SyncInterval:       cfg.SyncInterval,
		SyncOverlap:        cfg.SyncOverlap,
		RebuildInterval:    cfg.RebuildInterval,
		EndedKeptFor:       cfg.EndedKeptFor,
		PositiveTTL:        cfg.CacheTTL,
		PositiveSize:       cfg.CacheSize,
		StaleFor:           cfg.CacheStaleFor,
		NegativeTTL:        cfg.NegativeCacheTTL,
		NegativeSize:       cfg.NegativeCacheSize,
		LookupConcurrency:  cfg.LookupConcurrency,
		LookupBatch:        cfg.LookupBatch,
		LookupTimeout:      cfg.LookupTimeout,
		UsageFlushInterval: cfg.UsageFlushInterval,
		Naive:              o.naive,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, migrator: migrator, validator: validator, registry: reg, health: health.NewServer()}
	s.notReady.Store("starting")
	if len(cfg.AdminTokens) == 0 {
		log.Warn("no admin token configured (KEYSERVICE_ADMIN_TOKENS): admin calls will be refused")
	}

	keyLimit, _ := cfg.KeyLimit() // validated
	var keyStore ratelimit.KeyStore = ratelimit.NewLocal(cfg.CacheSize, cfg.CallerIdle, nil)
	if cfg.RedisURL != "" {
		ropts, _ := redis.ParseURL(cfg.RedisURL) // validated
		ropts.MaxRetries = -1                    // a retry would only add to the fallback timeout
		s.redis = redis.NewClient(ropts)
		keyStore = ratelimit.NewFallback(ratelimit.NewRedis(s.redis, "keyservice:"), keyStore, cfg.RedisTimeout, log, reg)
	}
	svc := &keyService{
		keys:         st,
		validator:    validator,
		format:       format,
		now:          time.Now,
		keyLimits:    keyStore,
		defaultLimit: keyLimit,
		ceiling:      o.ceiling,
		cursors:      store.NewCursorCodec(pageTokenSecret(cfg.AdminTokens)),
		views: otter.Must(&otter.Options[*store.Key, *keyservicev1.Key]{
			MaximumSize: cfg.CacheSize + cfg.NegativeCacheSize,
			Clock:       otter.NewCoarseClock(time.Second),
		}),
	}
	callerTokens, _ := cfg.CallerTokenMap()  // validated
	overrides, _ := cfg.CallerOverrides()    // validated
	trusted, _ := cfg.TrustedProxyPrefixes() // validated
	callers := ratelimit.NewCallers(ratelimit.CallerConfig{
		Default:        ratelimit.Budget{Rate: cfg.CallerRate, Burst: cfg.CallerBurst},
		Overrides:      overrides,
		Failed:         ratelimit.Budget{Rate: cfg.FailedRate, Burst: cfg.FailedBurst},
		TableSize:      cfg.CallerTableSize,
		Idle:           cfg.CallerIdle,
		TrustedProxies: trusted,
		Registry:       reg,
	})
	tlsCfg, err := cfg.serverTLS()
	if err != nil {
		pool.Close()
		return nil, err
	}
	// Outermost first (the same chain serves gRPC and REST). Recovery sits
	// inside logging so a panic is logged as the INTERNAL it becomes; the
	// caller limit follows authentication, which names the caller; errors
	// are mapped innermost so every other interceptor sees the final status.
	tp, tpShutdown, err := o.tracerProvider, func(context.Context) error { return nil }, error(nil)
	if tp == nil {
		if tp, tpShutdown, err = tracerProviderFromEnv(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_*: %w", err)
		}
	}
	s.tracingShutdown = tpShutdown
	rpcCalls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_rpc_requests_total",
		Help: "Calls by method and gRPC code, REST included (it runs through the same chain).",
	}, []string{"method", "code"})
	reg.MustRegister(rpcCalls)
	ics := []grpc.UnaryServerInterceptor{requestID()}
	if tp != nil {
		ics = append(ics, tracing(tp))
	}
	intercept := chain(append(ics,
		logging(log, rpcCalls),
		refuseUndecodable(), // after logging: counted and logged like any refusal
		recovery(log),
		authenticate(newAuthConfig(cfg.AdminTokens, callerTokens, cfg.TLSClientCAFile != "")),
		callers.Interceptor(),
		mapErrors(log),
	)...)

	gopts := []grpc.ServerOption{
		grpc.UnaryInterceptor(intercept),
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.ForceServerCodecV2(lenientCodec{CodecV2: encoding.GetCodecV2("proto")}),
		// Connection hygiene: bounded headers and streams per connection,
		// idle connections closed, clients that ping too often cut off.
		grpc.MaxHeaderListSize(uint32(cfg.MaxHeaderBytes)),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: cfg.ConnIdle, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.InTapHandle(readDeadline(cfg.RequestReadTimeout)),
	}
	if tlsCfg != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpc = grpc.NewServer(gopts...)
	keyservicev1.RegisterKeyServiceServer(s.grpc, svc)
	// Every in-process caller of the service (gateway, forward-auth, Envoy)
	// goes through the same chain as gRPC.
	wrapped := &chained{srv: svc, intercept: intercept}
	authv3.RegisterAuthorizationServer(s.grpc, &extAuthz{svc: wrapped, keyHeader: cfg.AuthHeader})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)

	gw, err := newGateway(ctx, wrapped, int64(cfg.MaxRequestBytes), trusted)
	if err != nil {
		pool.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.Handle("/v1/auth", forwardAuth(wrapped, cfg.AuthHeader, trusted))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(api.OpenAPI)
	})
	useForGRPCLogs(log)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       cfg.ConnIdle,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsCfg,
	}

	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		pool.Close()
		return nil, fmt.Errorf("KEYSERVICE_GRPC_ADDR: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		s.grpcLis.Close()
		pool.Close()
		return nil, fmt.Errorf("KEYSERVICE_HTTP_ADDR: %w", err)
	}
	return s, nil
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// Serve serves until ctx ends, then stops taking calls, lets in-flight calls
// finish (up to ShutdownTimeout) and closes the pool.
func (s *Server) Serve(ctx context.Context) error {
	defer s.store.Pool().Close()
	if s.redis != nil {
		defer s.redis.Close()
	}
	defer s.migrator.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		serve := s.http.Serve
		if s.http.TLSConfig != nil {
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
		}
		if err := serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	g.Go(func() error { s.watchReadiness(gctx); return nil })
	g.Go(func() error { return s.validator.Run(gctx, s.store.ListenConn) })
	s.log.Info("serving", "grpc", s.GRPCAddr().String(), "http", s.HTTPAddr().String())
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	return g.Wait()
}

func (s *Server) shutdown() {
	s.log.Info("shutting down: draining in-flight calls", "timeout", s.cfg.ShutdownTimeout)
	s.setReady(false, "shutting down")
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("HTTP shutdown incomplete", "error", err)
		_ = s.http.Close()
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("gRPC drain timed out; closing remaining calls")
		s.grpc.Stop()
		<-done
	}
	if err := s.tracingShutdown(ctx); err != nil {
		s.log.Warn("flushing traces", "error", err)
	}
	s.log.Info("stopped")
}

// watchReadiness migrates (when configured) and checks the database and
// schema every ReadyInterval, publishing the result to /readyz and
// grpc.health.v1.
func (s *Server) watchReadiness(ctx context.Context) {
	migrated := !s.cfg.Migrate
	t := time.NewTicker(s.cfg.ReadyInterval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyInterval+s.cfg.DBConnectTimeout)
		if !migrated {
			if err := s.migrator.Up(cctx, s.log); err != nil {
				s.log.Warn("migration failed; will retry", "error", err)
			} else {
				migrated = true
			}
		}
		s.check(cctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check decides readiness. Before the key filter has loaded, the service
// cannot answer (it refuses rather than send every key to the database), so
// it is not ready. Once loaded it stays ready through a database outage: it
// still answers cached and filter-rejected keys, and refuses only what
// needs a lookup, which is better than taking every replica out of the load
// balancer at once. /readyz then reports "degraded".
func (s *Server) check(ctx context.Context) {
	dbErr := s.store.Ping(ctx)
	s.dbOK.Store(dbErr == nil)
	if s.validator.Loaded() {
		s.setReady(true, "")
		return
	}
	if dbErr != nil {
		s.setReady(false, "database unreachable; key filter not loaded")
		return
	}
	current, err := s.migrator.Current(ctx)
	switch {
	case err != nil:
		s.setReady(false, "cannot read schema version")
	case !current:
		s.setReady(false, "schema not migrated: run keyservice migrate, or serve with --migrate")
	default:
		s.setReady(false, "loading the key filter")
	}
}

func (s *Server) setReady(ok bool, why string) {
	was := s.ready.Swap(ok)
	s.notReady.Store(why)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(keyservicev1.KeyService_ServiceDesc.ServiceName, st)
	if was != ok {
		s.log.Info("readiness changed", "ready", ok, "reason", why)
	}
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if s.ready.Load() {
		if !s.dbOK.Load() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "degraded",
				"reason": "database unreachable: answering from memory, keys that need a lookup get UNAVAILABLE"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": s.notReady.Load().(string)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// pageTokenSecret is the key page tokens are signed with. Only admins list
// keys, and every replica is configured with the same admin tokens, so the
// key is derived from them: replicas agree without another secret to
// distribute, and changing the admin tokens retires outstanding tokens.
func pageTokenSecret(adminTokens []string) []byte {
	sorted := slices.Clone(adminTokens)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte("keyservice page tokens v1"))
	for _, t := range sorted {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return h.Sum(nil)
}
