package validate_test

import (
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/testsignal"
	"github.com/keyservice/keyservice/internal/validate"
)

// Waiting: on the validator's signals where it has one (see
// internal/testsignal), else by polling a condition.

// waitForLoad waits for v's filter to load (v.Ready), failing t after d.
func waitForLoad(t testing.TB, v *validate.Validator, d time.Duration) {
	t.Helper()
	select {
	case <-v.Ready():
	case <-time.After(d):
		t.Fatalf("the key filter did not load within %s", d)
	}
}

// waitSyncAfter returns once a sync that began after the call has ended:
// the second sync to end from now (syncs run one at a time, so the first
// may have begun before).
func waitSyncAfter(t testing.TB, synced testsignal.Signal) {
	t.Helper()
	synced.Drain()
	synced.Wait(t, 10*time.Second)
	synced.Wait(t, 10*time.Second)
}

// waitFor polls cond, for what no signal tells of (another replica's
// NOTIFY arriving, a background refresh landing).
func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
