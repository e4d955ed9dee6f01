package server

import (
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/health"
)

// TestReadinessStaysDownOnceStopping: a readiness check that was in flight
// when shutdown began must not report the replica ready again (CI caught
// /readyz answering 200 during the shutdown delay).
func TestReadinessStaysDownOnceStopping(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), health: health.NewServer(), readyCh: make(chan struct{})}
	s.setReady(true, "")
	s.stopping.Store(true)
	s.setReady(false, "shutting down")
	s.setReady(true, "") // the late check
	if s.ready.Load() {
		t.Fatal("ready again after shutdown began")
	}
}
