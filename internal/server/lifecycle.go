package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/credits"
	"github.com/keyservice/keyservice/internal/keyevents"
	"github.com/keyservice/keyservice/internal/service"
	"github.com/keyservice/keyservice/internal/tenancy"
)

// closers are what New opened, closed in reverse order: by New itself when
// a later step fails, else by Serve on the way out.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c *closers) close() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// requestExpiryInterval is how often the records of admin writes made
// with a request_id that are past the idempotency window are deleted
// (they are never honoured once expired, deleted or not).
const requestExpiryInterval = 10 * time.Minute

// traceFlushTimeout bounds the last flush of spans at shutdown, apart from
// the drain: an unreachable collector must not hold the process.
const traceFlushTimeout = 5 * time.Second

func (s *Server) flushTraces(shutdown func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		s.log.Warn("flushing traces", "error", err)
	}
}

// Serve serves until ctx ends, then stops taking calls, lets in-flight calls
// finish (up to ShutdownTimeout) and closes everything New opened.
func (s *Server) Serve(ctx context.Context) error {
	defer s.closers.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) &&
			!(s.stopping.Load() && errors.Is(err, net.ErrClosed)) { // closed first by shutdown
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
	if s.debug != nil {
		g.Go(func() error {
			if err := s.debug.Serve(s.debugLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("debug server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error { s.watchReadiness(gctx); return nil })
	// The store's LISTEN connection feeds other replicas' changes. With
	// --migrate, the filter loads once the schema is there (before, every
	// first start logged a failed load of a table that did not exist yet).
	g.Go(func() error {
		select {
		case <-s.migrated:
		case <-gctx.Done():
			return nil
		}
		// Credentials and keyspaces first: the replica is ready only once
		// the validator is, so never before a stored credential is known.
		if !s.tenancy.LoadRetrying(gctx) {
			return nil
		}
		g.Go(func() error { return s.tenancy.Run(gctx) })
		g.Go(func() error { s.credits.Run(gctx); return nil })
		g.Go(func() error { s.usage.Run(gctx); return nil })
		return s.validator.Run(gctx, creditsFeed{s.tenancy.Feed(s.store), s.credits, s.events})
	})
	g.Go(func() error {
		select {
		case <-s.migrated:
			s.store.ExpireRequests(gctx, requestExpiryInterval, s.log)
		case <-gctx.Done():
		}
		return nil
	})
	g.Go(func() error {
		select {
		case <-s.migrated:
			s.expireChargeIDs(gctx)
		case <-gctx.Done():
		}
		return nil
	})
	s.log.Info("serving", "grpc", s.GRPCAddr().String(), "http", s.HTTPAddr().String())
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	return g.Wait()
}

// acceptedGrace is how long the gRPC port takes the connections whose
// handshake is under way before it closes, and how long a connection
// accepted just before it closed has to reach the server (grpc-go closes a
// connection whose handling had not begun when GracefulStop began) before
// the drain begins.
const acceptedGrace = 200 * time.Millisecond

func (s *Server) shutdown() {
	s.log.Info("shutting down: draining in-flight calls", "timeout", s.cfg.ShutdownTimeout)
	s.stopping.Store(true)
	s.setReady(false, "shutting down")
	s.health.Shutdown()
	if d := s.cfg.ShutdownDelay; d > 0 {
		// Not ready, still serving: load balancers take the replica out
		// before its listeners close.
		s.log.Info("shutting down: serving until load balancers have noticed", "delay", d)
		// Answers meanwhile say Connection: close, so a balancer keeps no
		// connection the drain would close under a call.
		s.http.SetKeepAlivesEnabled(false)
		time.Sleep(d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.events.Close() // WatchKeyEvents streams end; their callers go elsewhere
	var portClosed time.Time
	// New gRPC connections are turned away first, and the ones already
	// made taken and served (latelisten.go, stopTaking); then the port
	// closes (a balancer passes later calls on) and the drain begins.
	if s.grpcLate != nil {
		if err := s.grpcLate.stopTaking(acceptedGrace); err != nil {
			s.log.Warn("shutting down: new gRPC connections could not be filtered; the listen backlog shrank instead (a call on a connection queued as the port closes may be cut)", "error", err)
		}
		_ = s.grpcLis.Close()
		portClosed = time.Now()
		time.Sleep(acceptedGrace)
	} // calls on connections just accepted reach the server before its GOAWAY
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("HTTP shutdown incomplete", "error", err)
		_ = s.http.Close()
	}
	if s.debug != nil {
		_ = s.debug.Close() // a profile in progress is cut short
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("gRPC drain timed out; closing remaining calls")
		s.grpc.Stop()
		<-done
	}
	// No call is in flight any more: what was counted and leased goes to
	// the database now (graceful shutdown loses no usage and no credits).
	fctx, fcancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer fcancel()
	if err := s.usage.Close(fctx); err != nil {
		s.log.Error("usage not written at shutdown", "error", err)
	}
	if err := s.credits.Close(fctx); err != nil {
		s.log.Warn("leased credits not given back at shutdown (they are lost, never overspent)", "error", err)
	}
	if s.cfg.ShutdownDelay > 0 && !portClosed.IsZero() {
		// Behind a balancer: a connection whose SYN was dropped just before
		// the port closed sends it again a second later, and must meet a
		// closed port (refused: the balancer passes the call on), not an
		// address gone with the process's container (no answer: the
		// balancer waits out its connect timeout).
		time.Sleep(time.Until(portClosed.Add(synRetried)))
	}
	s.log.Info("stopped")
}

// synRetried is past the first SYN retransmission (one second, Linux's
// initial retransmission timeout) of a connection attempt dropped as the
// gRPC port closed.
const synRetried = 1200 * time.Millisecond

// creditsFeed puts the credits ledger's handler in front of the validation
// path's: a credits event (set, added, charged elsewhere) reaches the
// ledger, which gives back its lease and asks again.
//
// In front of both, the events log publishes keyspace, credential and
// credits changes to WatchKeyEvents streams.
type creditsFeed struct {
	feed   tenancy.Feed
	l      *credits.Ledger
	events *keyevents.Log
}

func (f creditsFeed) Listen(ctx context.Context, h apikey.ChangeHandler) error {
	return f.feed.Listen(ctx, f.events.Handler(credits.Handler(h, f.l)))
}

// expireChargeIDs forgets the request ids of charges and top-ups once the
// idempotency window has passed (a retry after it is a new charge, as a
// write's is).
func (s *Server) expireChargeIDs(ctx context.Context) {
	t := time.NewTicker(requestExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		window := s.cfg.IdempotencyWindow
		if window <= 0 {
			window = service.DefaultIdempotencyWindow
		}
		if n, err := s.store.DeleteCreditRequestsBefore(ctx, time.Now().Add(-window)); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting expired charge request ids", "error", err)
		} else if n > 0 {
			s.log.Debug("deleted expired charge request ids", "rows", n)
		}
	}
}
