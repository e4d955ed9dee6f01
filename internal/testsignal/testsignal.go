// Package testsignal lets tests wait for something a component did (a
// load that failed, a sync that ran) instead of sleeping and hoping, after
// riverqueue/river's test signals. A Signal that was never Init'ed costs a
// nil check: production code signals freely.
package testsignal

import "time"

// TB is the part of testing.TB that Wait needs (no import of testing in
// production code).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Signal is a buffered channel of events, nil until Init.
type Signal chan struct{}

// Init makes s record signals; call it before the component runs.
func (s *Signal) Init() { *s = make(Signal, 1024) }

// Signal records one event; it never blocks (events past the buffer are
// dropped, which only a test that stopped waiting would notice).
func (s Signal) Signal() {
	if s == nil {
		return
	}
	select {
	case s <- struct{}{}:
	default:
	}
}

// Wait waits for the next event, failing t after timeout (a bound for a
// broken test, not a timing assertion).
func (s Signal) Wait(t TB, timeout time.Duration) {
	t.Helper()
	if s == nil {
		t.Fatalf("testsignal: Wait on a signal that was not Init'ed")
	}
	select {
	case <-s:
	case <-time.After(timeout):
		t.Fatalf("testsignal: no signal within %s", timeout)
	}
}

// Drain forgets the events recorded so far.
func (s Signal) Drain() {
	for {
		select {
		case <-s:
		default:
			return
		}
	}
}
