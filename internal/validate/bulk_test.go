package validate_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/testdb"
	"github.com/keyservice/keyservice/internal/validate"
)

// A bulk import (no NOTIFY: sync finds the keys) while two replicas serve:
// each replica reads it in pages of at most SyncPageSize rows, keeps
// answering the keys it had, and answers every imported key VALID.
// KEYSERVICE_TEST_IMPORT_KEYS sets the import's size (default 20,000; the
// figures in docs/scaling.md are from 1,000,000).
func TestBulkImportIsSyncedInPages(t *testing.T) {
	// Not parallel: two replicas syncing 20,000 keys every 200 ms would
	// take the CPU that other tests' lookup deadlines count on.
	n := 20_000
	if s := os.Getenv("KEYSERVICE_TEST_IMPORT_KEYS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	const page = 1000
	u, _ := testdb.New(t)
	var ha, hb hookedStore
	paged := func(c *validate.Config) { c.SyncPageSize = page; c.SyncInterval = 200 * time.Millisecond }
	a := setupOn(t, u, true, hook(&ha), paged)
	b := setupOn(t, u, true, hook(&hb), paged)
	old, _ := a.create(t, nil)
	waitFor(t, 10*time.Second, func() bool {
		r, err := b.v.Validate(context.Background(), old.Secret)
		return err == nil && r.Code == outcome.Valid
	})

	// Both replicas answer the key they had throughout.
	var wrong atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, v := range []*validate.Validator{a.v, b.v} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if r, err := v.Validate(context.Background(), old.Secret); err != nil || r.Code != outcome.Valid {
					t.Logf("the key held before: %v, %v", r.Code, err)
					wrong.Add(1)
				}
			}
		})
	}

	in := make([]store.ImportedKey, n)
	secrets := make([]string, n)
	for i := range in {
		g, err := a.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = g.Secret
		in[i].Hash, in[i].Hint, in[i].Name = g.Hash, g.Hint, "imported"
	}
	rowsBefore := ha.changeRows.Load() + hb.changeRows.Load()
	began := time.Now()
	if _, err := a.store.ImportKeys(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	imported := time.Since(began)
	for _, bb := range []*bundle{a, b} {
		waitFor(t, 2*time.Minute, func() bool {
			return validate.FilterMayContain(bb.v, keys.HashOf(secrets[n-1])) && validate.FilterMayContain(bb.v, keys.HashOf(secrets[0]))
		})
	}
	synced := time.Since(began)
	close(stop)
	wg.Wait()
	for _, i := range []int{0, n / 2, n - 1} {
		for _, bb := range []*bundle{a, b} {
			if r := mustValidate(t, bb.v, secrets[i]); r.Code != outcome.Valid {
				t.Fatalf("imported key %d: %v, want VALID", i, r.Code)
			}
		}
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d answers for a key held before the import were not VALID", wrong.Load())
	}
	for name, h := range map[string]*hookedStore{"A": &ha, "B": &hb} {
		if got := h.biggestPage.Load(); got > page {
			t.Errorf("replica %s read %d rows in one page, want at most %d", name, got, page)
		}
	}
	rows := ha.changeRows.Load() + hb.changeRows.Load() - rowsBefore
	if rows < int64(2*n) {
		t.Errorf("the replicas' syncs read %d rows, fewer than the %d keys imported twice over", rows, n)
	}
	t.Logf("%d keys imported in %s, in both replicas' filters after %s; sync pages: A %d (biggest %d rows), B %d (biggest %d); rows read %d",
		n, imported.Round(time.Millisecond), synced.Round(time.Millisecond), ha.pages.Load(), ha.biggestPage.Load(), hb.pages.Load(), hb.biggestPage.Load(), rows)
}
