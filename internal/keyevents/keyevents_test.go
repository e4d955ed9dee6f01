package keyevents

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
)

type nextHandler struct{ caughtUp int }

func (n *nextHandler) Changed(apikey.Event)          {}
func (n *nextHandler) StreamLost()                   {}
func (n *nextHandler) CatchUp(context.Context) error { n.caughtUp++; return nil }
func (n *nextHandler) ListenError(error)             {}

// TestCatchUpTellsWatchersToDropEverything: after a reconnection the sync
// publishes nothing for changes memory already reflects, which a caller
// may still cache; the catch-up's tenancy event drops everything.
func TestCatchUpTellsWatchersToDropEverything(t *testing.T) {
	l := New(8)
	n := &nextHandler{}
	if err := l.Handler(n).CatchUp(context.Background()); err != nil || n.caughtUp != 1 {
		t.Fatalf("CatchUp: %v, next caught up %d times", err, n.caughtUp)
	}
	evs, lost, _ := l.Read(0, make([]Event, 8))
	if lost || len(evs) != 1 || evs[0].Kind != Tenancy {
		t.Fatalf("after a catch-up: %v (lost %v), want one tenancy event", evs, lost)
	}
}

// TestResumeWithinTheWindowOnly: a cursor resumes while its events are in
// the window; older, another process's, malformed or from the future, it
// cannot (a resync).
func TestResumeWithinTheWindowOnly(t *testing.T) {
	l := New(4)
	for i := 0; i < 6; i++ {
		l.Publish(Created, []byte{byte(i), 0, 0, 0, 0, 0, 0, 0}, uuid.Nil)
	}
	for _, tc := range []struct {
		cursor string
		ok     bool
	}{
		{l.Cursor(6), true}, {l.Cursor(2), true}, {l.Cursor(1), false}, {l.Cursor(7), false},
		{"other." + "3", false}, {"garbage", false},
	} {
		if _, ok := l.Resume(tc.cursor); ok != tc.ok {
			t.Errorf("Resume(%q) = %v, want %v", tc.cursor, ok, tc.ok)
		}
	}
	evs, lost, _ := l.Read(2, make([]Event, 8))
	if lost || len(evs) != 4 || evs[0].Seq != 3 || evs[3].Seq != 6 {
		t.Fatalf("Read(2) = %v lost %v, want events 3..6", evs, lost)
	}
	if _, lost, _ := l.Read(1, make([]Event, 8)); !lost {
		t.Fatal("Read(1): event 2 has left the window, want lost")
	}
}
