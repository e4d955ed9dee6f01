package validate

import (
	"testing"

	"github.com/keyservice/keyservice/internal/keys"
)

// A key the current filter already answers "maybe" for (known, or a false
// positive) and that sync therefore does not add, still reaches a filter
// being rebuilt meanwhile.
func TestCaptureOnlyReachesTheNextGeneration(t *testing.T) {
	t.Parallel()
	var f filter
	f.startRebuild()
	f.swap(newGeneration(1000, 0.001))
	h := keys.HashOf("ks_captured")
	f.startRebuild()
	next := newGeneration(1000, 0.001)
	f.captureOnly(h)
	if maybe, _ := f.test(&h); maybe {
		t.Fatal("captureOnly added to the current generation")
	}
	f.swap(next)
	if maybe, _ := f.test(&h); !maybe {
		t.Fatal("a key captured during the rebuild is missing from the new filter")
	}
	f.captureOnly(keys.HashOf("ks_after")) // no rebuild running: nothing recorded
	if len(f.pending) != 0 {
		t.Fatal("captureOnly recorded without a rebuild")
	}
}
