package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyservice/keyservice/internal/apikey"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestSlotEpisodesThatFlapAreLoggedOnce: a server at its limit that frees a
// slot now and then (the prober gets it, the next connection is refused
// again) makes one start line and, once it has stayed over for the report
// interval, one end line, not two lines per freed slot.
func TestSlotEpisodesThatFlapAreLoggedOnce(t *testing.T) {
	logs := &syncBuf{}
	s := newSlots(slog.New(slog.NewJSONHandler(logs, nil)))
	s.reportEvery = 1500 * time.Millisecond
	probed := make(chan struct{}, 100)
	s.probe = func(context.Context) error { probed <- struct{}{}; return nil } // a slot each time
	full := &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}
	for i := 0; i < 8; i++ {
		s.refused(full)
		if !s.blocked.Load() {
			t.Fatal("a refused connection did not start or resume an episode")
		}
		<-probed
		for s.blocked.Load() {
			time.Sleep(time.Millisecond)
		}
	}
	if n := logs.Count("refused a new connection"); n != 1 {
		t.Errorf("%d start lines for one flapping episode, want 1:\n%s", n, logs.b.String())
	}
	if n := logs.Count("can grow again"); n != 0 {
		t.Errorf("an end line before the episode stayed over:\n%s", logs.b.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.Count("can grow again") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := logs.Count("can grow again"); n != 1 {
		t.Errorf("%d end lines, want 1:\n%s", n, logs.b.String())
	}
	if !strings.Contains(logs.b.String(), `"connects_refused":8`) {
		t.Errorf("the end line does not count the 8 refused connections:\n%s", logs.b.String())
	}
}

// TestConnectBackoffIsUnavailable: the pool holding back during an episode
// is a store outage to whoever sees it, never an internal error.
func TestConnectBackoffIsUnavailable(t *testing.T) {
	if err := classify(errConnectBackoff); !noSlot(err) || !isUnavailableErr(err) {
		t.Errorf("classify(errConnectBackoff) = %v", err)
	}
}

func isUnavailableErr(err error) bool { return errors.Is(err, apikey.ErrUnavailable) }

// TestCommitTerminatedIsUnknown: a backend terminated at COMMIT (as while
// waiting for a synchronous standby) may have committed: the outcome is
// unknown, not a refusal; the server refusing the commit is not unknown.
func TestCommitTerminatedIsUnknown(t *testing.T) {
	terminated := &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}
	if err := commitError(terminated); !errors.Is(err, apikey.ErrCommitUnknown) {
		t.Errorf("commitError(57P01 FATAL) = %v, want ErrCommitUnknown", err)
	}
	refused := &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access"}
	if err := commitError(refused); errors.Is(err, apikey.ErrCommitUnknown) {
		t.Errorf("commitError(40001) = %v: the server refused the commit, nothing was applied", err)
	}
}
