package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/backoff"
)

// watchReadiness migrates (when configured) and checks the database and
// schema every ReadyInterval, publishing the result to /readyz and
// grpc.health.v1.
func (s *Server) watchReadiness(ctx context.Context) {
	migrated := !s.cfg.Migrate
	loaded := s.validator.Ready()
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyInterval+s.cfg.DBConnectTimeout)
		if !migrated {
			if err := s.migrator.Up(cctx, s.log); err != nil {
				s.log.Warn("migration failed; will retry", "error", err)
			} else {
				migrated = true
				close(s.migrated)
			}
		}
		s.check(cctx)
		cancel()
		// Jittered, so replicas started together do not check (and retry a
		// failed migration) in the same instant; at once when the key filter
		// has just loaded, so the replica is ready as soon as it can be.
		t := time.NewTimer(backoff.Jitter(s.cfg.ReadyInterval, 0.1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-loaded:
			loaded = nil // once
		case <-t.C:
		}
		t.Stop()
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
	if errors.Is(dbErr, apikey.ErrNoSlot) {
		dbErr = nil // it answers, on the connections the pool has
	}
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
	// One at a time: shutdown sets stopping, then not ready; a check that
	// passed the test below before that cannot land "ready" after it.
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if ok && s.stopping.Load() {
		return // a check that was in flight when shutdown began
	}
	if ok && !s.grpcOpen {
		// The gRPC port listens from the first time the replica is ready,
		// before anyone can read that it is (latelisten.go); a port that
		// cannot listen keeps the replica unready, and is tried again at
		// the next check.
		if s.grpcLate != nil {
			if err := s.grpcLate.open(); err != nil {
				s.log.Error("the gRPC port could not listen", "error", err)
				ok, why = false, "the gRPC port could not listen: "+err.Error()
			}
		}
		if ok {
			s.grpcOpen = true
			s.readyOnce.Do(func() { close(s.readyCh) })
		}
	}
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

// Ready is closed the first time the service is ready (the key filter is
// loaded): for tests and tools that start a server and wait for it.
func (s *Server) Ready() <-chan struct{} { return s.readyCh }

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if s.ready.Load() {
		body := map[string]string{"status": "ready"}
		if !s.dbOK.Load() {
			body = map[string]string{"status": "degraded",
				"reason": "database unreachable: answering from memory, keys that need a lookup get UNAVAILABLE"}
		}
		// How keys are answered: memory mode or filter mode.
		body["mode"], body["keys"] = s.validator.Mode()
		if set, behind := s.validator.ReadReplica(); set {
			// Lag changes no answer (the keys changed within it are read
			// on the primary); it says how much goes to the primary.
			body["read_replica"] = "caught up"
			if behind > 0 {
				body["read_replica"] = fmt.Sprintf("%d bytes of WAL behind the primary: keys changed since are read on the primary", behind)
			}
		}
		// Ready: the pool answers on the connections it has.
		if d := s.store.PoolState().Detail(); d != "" {
			body["pool"] = d
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": s.notReady.Load().(string)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
