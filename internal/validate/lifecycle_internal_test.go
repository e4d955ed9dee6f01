package validate

import (
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/store"
)

// TestLocalUpdateCachesItsRecordOnlyIfNothingOvertookIt: when another
// change reached memory while an update's write ran (another replica's
// revocation committed right after it, say), the writer must not put its
// now possibly stale record in the cache.
func TestLocalUpdateCachesItsRecordOnlyIfNothingOvertookIt(t *testing.T) {
	v := &Validator{}
	at := time.Now()
	rec := &store.Key{UpdatedAt: &at}
	before := v.applied.Load()
	if e := v.updatedEvent(rec, before); e.Key != rec || !e.At.Equal(at) {
		t.Fatalf("nothing overtook the write: %+v", e)
	}
	v.applied.Add(1) // a NOTIFY applied while the write ran
	if e := v.updatedEvent(rec, before); e.Key != nil {
		t.Fatal("an overtaken update would cache its record")
	}
}
