package validate_test

// Full rebuilds of the filter.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/validate"
)

func TestRebuildKeepsRecentlyRevokedKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.FilterFPRate = 1e-9 })
	g, k := b.create(t, nil)
	b.revoke(t, k)
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if !validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("a key revoked just now left the filter")
	}
	// A fresh replica (nothing cached) still tells REVOKED from NOT_FOUND.
	fresh := setupOn(t, b.url, true)
	if r := mustValidate(t, fresh.v, g.Secret); r.Code != outcome.Revoked {
		t.Fatalf("recently revoked key on a fresh replica: %v, want REVOKED", r.Code)
	}
}

func TestRebuildDropsRevokedKeysAndKeepsNewOnes(t *testing.T) {
	t.Parallel()
	// No background sync: one that read the database's clock just before
	// the revoke committed and its changes just after (a wide window on a
	// busy machine) sees the key ended within EndedKeptFor and puts it back
	// in the filter, as it should; this test is about the rebuild alone.
	b := setup(t, func(c *validate.Config) {
		c.FilterFPRate = 1e-9
		c.EndedKeptFor = time.Nanosecond
		c.SyncInterval = time.Hour
	})
	_, k := b.create(t, nil)
	kept, _ := b.create(t, nil)
	b.revoke(t, k)
	if !validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("the filter should still hold the revoked key before a rebuild")
	}
	if err := validate.Rebuild(b.v, context.Background()); err != nil {
		t.Fatal(err)
	}
	if validate.FilterMayContain(b.v, k.Hash) {
		t.Fatal("rebuild kept a revoked key")
	}
	if !validate.FilterMayContain(b.v, kept.Hash) {
		t.Fatal("rebuild lost an active key")
	}
}

// TestConcurrentRebuildsKeepEveryNewKey runs rebuilds back to back while
// keys are created; every key created must end up in the filter.
func TestConcurrentRebuildsKeepEveryNewKey(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *validate.Config) { c.FilterFPRate = 1e-9 })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := validate.Rebuild(b.v, context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var created []keys.Hash
	for i := 0; i < 500; i++ {
		_, k := b.create(t, nil)
		created = append(created, k.Hash)
	}
	close(stop)
	wg.Wait()
	for i, h := range created {
		if !validate.FilterMayContain(b.v, h) {
			t.Fatalf("key %d created during rebuilds is missing from the filter", i)
		}
	}
}
