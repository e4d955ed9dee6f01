package backoff

import (
	"testing"
	"time"
)

func TestWaitsGrowWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceil *= time.Millisecond
		d := b.Next()
		if d < ceil/2 || d > ceil {
			t.Fatalf("wait %d: %v, want within [%v, %v]", n, d, ceil/2, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
}

// Two replicas on the same schedule do not wait the same: the point of
// the jitter.
func TestReplicasDoNotRetryInLockstep(t *testing.T) {
	t.Parallel()
	same := 0
	for range 100 {
		a, b := Backoff{Min: time.Second, Max: time.Minute}, Backoff{Min: time.Second, Max: time.Minute}
		if a.Next() == b.Next() {
			same++
		}
	}
	if same > 5 {
		t.Fatalf("%d of 100 first waits were equal", same)
	}
}

func TestJitterStaysInItsBand(t *testing.T) {
	t.Parallel()
	for range 1000 {
		if d := Jitter(time.Hour, 0.1); d < 54*time.Minute || d > 66*time.Minute {
			t.Fatalf("Jitter(1h, 0.1) = %v", d)
		}
	}
}
