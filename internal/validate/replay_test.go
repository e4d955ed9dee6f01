package validate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// heldFeed is the store's feed, except that it holds back every event
// while held is set: a NOTIFY still on its way.
type heldFeed struct {
	inner validate.Feed
	mu    sync.Mutex
	held  bool
}

func (f *heldFeed) hold(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = on
}

func (f *heldFeed) Listen(ctx context.Context, h apikey.ChangeHandler) error {
	return f.inner.Listen(ctx, heldHandler{h, f})
}

type heldHandler struct {
	apikey.ChangeHandler
	f *heldFeed
}

func (h heldHandler) Changed(e apikey.Event) {
	h.f.mu.Lock()
	held := h.f.held
	h.f.mu.Unlock()
	if !held {
		h.ChangeHandler.Changed(e)
	}
}

// TestReplayedWritesAreSeenHereWhenTheyReturn: a retried write whose
// request_id was already applied (by another replica, or by this one
// whose COMMIT answer was lost) answers from the record; when it returns,
// this replica answers as the write left the key, even though the first
// attempt's NOTIFY has not arrived (it is held back here, and the
// periodic sync is an hour away).
func TestReplayedWritesAreSeenHereWhenTheyReturn(t *testing.T) {
	inModes(t, func(t *testing.T) {
		feed := &heldFeed{}
		wrapFeed = func(f validate.Feed) validate.Feed { feed.inner = f; return feed }
		b := setup(t, func(c *validate.Config) { c.SyncInterval = time.Hour })
		wrapFeed = nil
		other := store.New(b.pool, time.Second) // the replica that applied the first attempt

		withRequest := func(method string) context.Context {
			return apikey.WithRequest(context.Background(), &apikey.Request{
				ID: uuid.New(), Method: method, BodyHash: []byte(method), Window: time.Hour,
				Answer: func(...apikey.Key) ([]byte, error) { return []byte("answer"), nil },
			})
		}
		replayed := func(what string, err error) {
			t.Helper()
			var r *apikey.Replayed
			if !errors.As(err, &r) {
				t.Fatalf("%s retried: %v; want it replayed", what, err)
			}
		}

		// Create: the retry made a secret of its own, but is answered with the
		// first attempt's key, which is VALID here when the retry returns.
		first, err := b.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		retry, err := b.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		feed.hold(true)
		ctx := withRequest("CreateKey")
		if _, err := other.CreateKey(ctx, apikey.NewKey{Hash: first.Hash, Hint: first.Hint, Name: "n", Owner: "o"}); err != nil {
			t.Fatal(err)
		}
		_, err = b.keys.CreateKey(ctx, apikey.NewKey{Hash: retry.Hash, Hint: retry.Hint, Name: "n", Owner: "o"})
		replayed("CreateKey", err)
		if r := mustValidate(t, b.v, first.Secret); r.Code != outcome.Valid {
			t.Fatalf("the key of a replayed create: %v; want VALID", r.Code)
		}
		feed.hold(false)

		// Update: the key is disabled by the first attempt.
		g, k := b.create(t, nil)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("new key: %v", r.Code)
		}
		feed.hold(true)
		ctx = withRequest("UpdateKey")
		u := apikey.Update{Fields: []string{apikey.FieldEnabled}, Enabled: false}
		if _, _, err := other.UpdateKey(ctx, k.ID, u); err != nil {
			t.Fatal(err)
		}
		_, _, err = b.keys.UpdateKey(ctx, k.ID, u)
		replayed("UpdateKey", err)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Disabled {
			t.Fatalf("after a replayed disable returned: %v; want DISABLED", r.Code)
		}
		feed.hold(false)

		// Revoke.
		g, k = b.create(t, nil)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("new key: %v", r.Code)
		}
		feed.hold(true)
		ctx = withRequest("RevokeKey")
		if _, err := other.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err = b.keys.RevokeKey(ctx, k.ID)
		replayed("RevokeKey", err)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
			t.Fatalf("after a replayed revoke returned: %v; want REVOKED", r.Code)
		}
		feed.hold(false)

		// Rotate with no grace: the old key expires, its successor is valid.
		g, k = b.create(t, nil)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("new key: %v", r.Code)
		}
		next, err := b.format.Generate()
		if err != nil {
			t.Fatal(err)
		}
		feed.hold(true)
		ctx = withRequest("RotateKey")
		rot := apikey.Rotation{NewKey: apikey.NewKey{Hash: next.Hash, Hint: next.Hint}}
		if _, _, err := other.RotateKey(ctx, k.ID, rot); err != nil {
			t.Fatal(err)
		}
		_, _, err = b.keys.RotateKey(ctx, k.ID, rot)
		replayed("RotateKey", err)
		// Past the old key's expiry (the database's now at the rotation): the
		// fake clock started when setup ran, which on a busy machine may be
		// more than a second before.
		b.clock.Advance(time.Since(b.clock.Now()) + time.Second)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Expired {
			t.Fatalf("old key after a replayed rotation with no grace returned: %v; want EXPIRED", r.Code)
		}
		if r := mustValidate(t, b.v, next.Secret); r.Code != outcome.Valid {
			t.Fatalf("successor after a replayed rotation returned: %v; want VALID", r.Code)
		}
		feed.hold(false)
	})
}

// TestALeakReportOfARevokedKeyIsSeenHere: a leak report of a key another
// replica revoked answers "already revoked"; this replica, whose NOTIFY of
// that revocation is still on its way, answers REVOKED when it returns.
func TestALeakReportOfARevokedKeyIsSeenHere(t *testing.T) {
	inModes(t, func(t *testing.T) {
		feed := &heldFeed{}
		wrapFeed = func(f validate.Feed) validate.Feed { feed.inner = f; return feed }
		b := setup(t, func(c *validate.Config) { c.SyncInterval = time.Hour })
		wrapFeed = nil
		other := store.New(b.pool, time.Second)
		g, k := b.create(t, nil)
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Valid {
			t.Fatalf("new key: %v", r.Code)
		}
		feed.hold(true)
		defer feed.hold(false)
		if _, err := other.RevokeKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
		_, action, err := b.keys.ReportLeak(context.Background(), apikey.LeakReport{KeyID: k.ID, URL: "https://example.com/leak", Source: "test"}, true)
		if err != nil || action != apikey.LeakAlreadyRevoked {
			t.Fatalf("report: %v, %v; want already_revoked", action, err)
		}
		if r := mustValidate(t, b.v, g.Secret); r.Code != outcome.Revoked {
			t.Fatalf("after a leak report said already revoked: %v here; want REVOKED", r.Code)
		}
	})
}
