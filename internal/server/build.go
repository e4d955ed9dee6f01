package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/keyservice/keyservice/api"
	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/console"
	"github.com/keyservice/keyservice/internal/gateway"
	"github.com/keyservice/keyservice/internal/middleware"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/service"
)

// chain is the interceptor chain, outermost first; the same chain serves
// gRPC and, through middleware.Bind, every HTTP transport.
//
//   - Metrics first, so every call is counted, refusals included.
//   - Recovery inside logging, so a panic is logged as the INTERNAL it
//     becomes; undecodable requests are refused after logging, so they are
//     logged like any refusal.
//   - The caller limit follows authentication, which names the caller.
//   - Errors are mapped innermost, so every other link sees the final code.
func (s *Server) chain(reg prometheus.Registerer, tp trace.TracerProvider) grpc.UnaryServerInterceptor {
	cfg := s.cfg
	callers := ratelimit.NewCallers(ratelimit.CallerConfig{Limits: cfg.Limits, TrustedProxies: cfg.TrustedProxies, Registry: reg})
	s.callers = callers
	ics := []grpc.UnaryServerInterceptor{middleware.Metrics(reg), middleware.RequestID()}
	if tp != nil {
		ics = append(ics, middleware.Tracing(tp))
	}
	return middleware.Chain(append(ics,
		middleware.Logging(s.log),
		middleware.RefuseUndecodable(),
		middleware.Recovery(s.log),
		middleware.Authenticate(middleware.Auth{Registry: s.tenancy, RequireCaller: cfg.RequireCaller || len(cfg.CallerTokens) > 0 || cfg.TLSClientCAFile != ""}),
		callers.Interceptor(),
		service.MapErrors(s.log),
	)...)
}

// keyLimits is the per-key budget store: local (as many budgets as the
// positive cache holds keys), or Redis shared by the replicas with the
// local store as its fallback.
func (s *Server) keyLimits(reg prometheus.Registerer) (ratelimit.KeyBudgets, error) {
	kb, closeKB, err := ratelimit.NewKeyBudgets(s.cfg.Limits, s.cfg.PositiveSize, s.log, reg)
	if err != nil {
		return nil, fmt.Errorf("KEYSERVICE_REDIS_URL: %w", err)
	}
	s.closers.add(closeKB)
	return kb, nil
}

// newGRPCServer serves the KeyService, Envoy's ext_authz, health and
// reflection on one port.
func (s *Server) newGRPCServer(svc keyservicev1.KeyServiceServer, intercept grpc.UnaryServerInterceptor, tlsCfg *tls.Config) *grpc.Server {
	cfg := s.cfg
	gopts := []grpc.ServerOption{
		grpc.UnaryInterceptor(intercept),
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.ForceServerCodecV2(middleware.LenientCodec{CodecV2: encoding.GetCodecV2("proto")}),
		// Connection hygiene: bounded headers and streams per connection,
		// idle connections closed, clients that ping too often cut off.
		// The header limit itself is the tap's, which refuses only the
		// call; HTTP/2 stops reading a block only past 4 x the limit (past
		// that, x/net/http2 resets the stream, or closes the connection if
		// the block goes on in further frames or one field is larger).
		grpc.MaxHeaderListSize(uint32(4 * cfg.MaxHeaderBytes)),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxStreams)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: cfg.ConnIdle, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(10 * time.Second),
		// Every service on the port, not only KeyService: the same read
		// deadline, and the same refusals of what a client sent.
		grpc.InTapHandle(middleware.Tap(cfg.RequestReadTimeout, cfg.MaxHeaderBytes)),
		grpc.ChainStreamInterceptor(s.streams.Interceptor(), middleware.StreamRequests()),
		// Calls run on long-lived workers whose stacks have grown once, not
		// on a new goroutine per call that grows its stack again (morestack
		// and copystack were 8% of the server's CPU under Validate load);
		// past the workers' number, a call still gets a goroutine of its own.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
	}
	if tlsCfg != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	g := grpc.NewServer(gopts...)
	keyservicev1.RegisterKeyServiceServer(g, middleware.BindStreams(svc, intercept))
	// Envoy's Check runs Validate through the chain, like every transport.
	authv3.RegisterAuthorizationServer(g, gateway.ExtAuthz(middleware.Bind(svc, intercept), cfg.AuthHeader))
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	return g
}

// newHTTPServer serves REST, forward-auth, health, readiness, metrics and
// the OpenAPI document. bound is the service through the chain.
func (s *Server) newHTTPServer(ctx context.Context, svc *service.Service, bound keyservicev1.KeyServiceServer, reg *prometheus.Registry, tlsCfg *tls.Config) (*http.Server, error) {
	cfg := s.cfg
	rest, err := gateway.REST(ctx, bound, int64(cfg.MaxRequestBytes), cfg.TrustedProxies, s.streams)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", rest)
	mux.Handle("/v1/auth", gateway.ForwardAuth(bound, cfg.AuthHeader, cfg.TrustedProxies))
	if cfg.Console {
		if s.consoleSecret == "" {
			s.log.Info("the console is off: neither KEYSERVICE_SEAL_KEY nor an admin token is set to seal its sessions with")
		} else {
			h, err := console.New(console.Config{Service: bound, Secret: s.consoleSecret, SignIn: s.callers.SignIn, Log: s.log, Registry: reg,
				ClientAddr: func(r *http.Request) (netip.Addr, bool) { return gateway.ClientAddr(r, cfg.TrustedProxies) },
				// As the auth interceptor decides: found and usable (a
				// bootstrap token is found before the first load); not
				// found before the stored credentials are loaded: unknown.
				Who: func(tok string) (console.Who, console.Access) {
					d := sha256.Sum256([]byte(tok))
					loaded := s.tenancy.Loaded() // first: Load publishes, then marks loaded
					e, ok := s.tenancy.Current().Credential(&d)
					switch {
					case !ok && !loaded:
						return console.Who{}, console.Unknown
					case !ok || !e.Usable(time.Now()):
						return console.Who{}, console.Refused
					}
					return console.Who{Name: e.Name, Perms: e.Permissions, AllKeyspaces: e.AllKeyspaces}, console.Usable
				}})
			if err != nil {
				return nil, err
			}
			mux.Handle("/console/", h)
		}
	}
	if cfg.ScanningKeysFile != "" {
		ks, err := gateway.LoadScanningKeys(cfg.ScanningKeysFile)
		if err != nil {
			return nil, fmt.Errorf("KEYSERVICE_SCANNING_KEYS_FILE: %w", err)
		}
		flagOnly := cfg.ScanningAction == "flag"
		handle := func(ctx context.Context, reports []gateway.LeakReport) ([]bool, error) {
			leaks := make([]service.Leak, len(reports))
			for i, r := range reports {
				leaks[i] = service.Leak{Token: r.Token, Type: r.Type, URL: r.URL, Source: r.Source}
			}
			verdicts, err := svc.ReportLeaks(ctx, leaks, flagOnly)
			if err != nil {
				return nil, err
			}
			found := make([]bool, len(verdicts))
			for i, v := range verdicts {
				found[i] = v.TruePositive
			}
			return found, nil
		}
		mux.Handle("POST /v1/secret-scanning/reports", gateway.SecretScanning(handle, ks, min(int64(cfg.MaxRequestBytes), gateway.MaxReportBytes), s.log, reg))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		gateway.WriteStatus(w, http.StatusNotFound, codes.NotFound, "no such path: "+r.URL.Path+" (the API is described at /openapi.json)")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(api.OpenAPI)
	})
	return &http.Server{
		// Go's own header limit lets MaxHeaderBytes + 4096 bytes through
		// (HTTP/1.1) or + 320 (HTTP/2), counted differently by each: it
		// only bounds memory; LimitHeaders is the documented limit.
		Handler:           gateway.LimitHeaders(mux, cfg.MaxHeaderBytes),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       cfg.ConnIdle,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		// net/http's lines (a TLS handshake a client broke off, ...) say
		// what the client did in their message: one kind, by source.
		ErrorLog:  slog.NewLogLogger(s.log.Handler().WithAttrs([]slog.Attr{slog.String("source", "http")}), slog.LevelWarn),
		TLSConfig: tlsCfg,
	}, nil
}
