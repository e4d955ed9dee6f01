package validate

// The admin door: the one interface for the admin reads and writes of
// keys, and AdminKeys, which applies each write to this replica's memory
// before it returns.

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// KeyStore is the one interface for the admin reads and writes of keys.
// *store.Store implements it over PostgreSQL; *AdminKeys implements it over a
// KeyStore, applying each write to this replica's memory before it
// returns. The service's handlers take a KeyStore (a *AdminKeys), so a fake
// can stand in for both in tests.
type KeyStore interface {
	CreateKey(ctx context.Context, k apikey.NewKey) (apikey.Key, error)
	GetKey(ctx context.Context, id uuid.UUID) (apikey.Key, error)
	ListKeys(ctx context.Context, p apikey.ListParams) ([]apikey.Key, apikey.Cursor, error)
	RevokeKey(ctx context.Context, id uuid.UUID) (apikey.Key, error)
	// UpdateKey reports whether the update changed anything (false: it
	// wrote nothing and returns the key as it is).
	UpdateKey(ctx context.Context, id uuid.UUID, u apikey.Update) (rec apikey.Key, changed bool, err error)
	RotateKey(ctx context.Context, id uuid.UUID, r apikey.Rotation) (newKey, oldKey apikey.Key, err error)
	ListAuditEvents(ctx context.Context, q apikey.AuditQuery) ([]apikey.AuditEvent, apikey.Cursor, error)
	KeyByHash(ctx context.Context, h keys.Hash) (apikey.Key, error)
	ReportLeak(ctx context.Context, r apikey.LeakReport, revoke bool) (apikey.Key, string, error)
}

// AdminKeys is the one door for admin reads and writes. Reads go to the store.
// A write goes to the store (whose transaction sends NOTIFY to the other
// replicas) and its effect is applied to this replica's memory before the
// write returns, so no Validate that starts afterwards on this replica can
// answer from before it. Every method is written out, reads included, so
// that a write added to KeyStore cannot pass through unseen by memory.
type AdminKeys struct {
	store KeyStore
	v     *Validator
}

var _ KeyStore = (*AdminKeys)(nil)

// AdminKeys returns the admin door to ks whose writes v sees at once.
func (v *Validator) AdminKeys(ks KeyStore) *AdminKeys { return &AdminKeys{store: ks, v: v} }

// CreateKey stores a new key; it is VALID here when CreateKey returns.
func (k *AdminKeys) CreateKey(ctx context.Context, nk apikey.NewKey) (apikey.Key, error) {
	before := k.v.mem.snapshot()
	// The hash is known before the write: its NOTIFY echo is expected
	// before it commits, so an echo that beats this call's return is not
	// applied as another replica's creation (which, in memory mode, would
	// fetch the record this call is about to hold).
	k.v.mem.expectEcho(apikey.EventCreated, nk.Hash, time.Time{})
	rec, err := k.store.CreateKey(ctx, nk)
	if err != nil {
		// The commit may still have happened (and its echo been
		// swallowed): applied as if sync had found it, which costs a
		// filter entry and nothing else if it did not.
		k.v.unsure(apikey.EventCreated, &apikey.Key{Hash: nk.Hash})
		return rec, k.settle(ctx, err)
	}
	k.v.applyLocal(apikey.Event{Kind: apikey.EventCreated, Hash: rec.Hash, Key: &rec}, before)
	return rec, nil
}

// RevokeKey revokes a key; it is REVOKED here when RevokeKey returns.
func (k *AdminKeys) RevokeKey(ctx context.Context, id uuid.UUID) (apikey.Key, error) {
	before := k.v.mem.snapshot()
	rec, err := k.store.RevokeKey(ctx, id)
	if err != nil {
		return rec, k.settle(ctx, err, id)
	}
	k.v.applyLocal(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, before)
	return rec, nil
}

// UpdateKey changes a key; the change is what Validate answers here when
// UpdateKey returns (cached answers and the key's limit included).
func (k *AdminKeys) UpdateKey(ctx context.Context, id uuid.UUID, u apikey.Update) (apikey.Key, bool, error) {
	before := k.v.mem.snapshot()
	// This replica's own NOTIFY is known as its echo before it can arrive,
	// so it does not count as another change to the stripe.
	var pending *apikey.Key
	u.BeforeCommit = func(rec apikey.Key) {
		pending = &rec
		k.v.mem.expectEcho(apikey.EventUpdated, rec.Hash, *rec.UpdatedAt)
	}
	rec, changed, err := k.store.UpdateKey(ctx, id, u)
	if err != nil {
		if pending != nil {
			k.v.unsure(apikey.EventUpdated, pending)
		}
		return rec, false, k.settle(ctx, err, id)
	}
	if !changed {
		return rec, false, nil
	}
	k.v.applyLocal(apikey.Event{Kind: apikey.EventUpdated, Hash: rec.Hash, At: *rec.UpdatedAt, Key: &rec}, before)
	return rec, true, nil
}

// RotateKey issues a key's successor; here, when RotateKey returns, the new
// key is VALID and the old one answers by its new expiry.
func (k *AdminKeys) RotateKey(ctx context.Context, id uuid.UUID, r apikey.Rotation) (newKey, oldKey apikey.Key, err error) {
	before := k.v.mem.snapshot()
	var pendingNew, pendingOld *apikey.Key
	r.BeforeCommit = func(newKey, oldKey apikey.Key) {
		pendingNew, pendingOld = &newKey, &oldKey
		k.v.mem.expectEcho(apikey.EventCreated, newKey.Hash, time.Time{})
		k.v.mem.expectEcho(apikey.EventUpdated, oldKey.Hash, *oldKey.UpdatedAt)
	}
	newKey, oldKey, err = k.store.RotateKey(ctx, id, r)
	if err != nil {
		if pendingNew != nil {
			k.v.unsure(apikey.EventCreated, pendingNew)
			k.v.unsure(apikey.EventUpdated, pendingOld)
		}
		return newKey, oldKey, k.settle(ctx, err, id)
	}
	// The old key first: the new key's event may bump the same stripe.
	k.v.applyLocal(apikey.Event{Kind: apikey.EventUpdated, Hash: oldKey.Hash, At: *oldKey.UpdatedAt, Key: &oldKey}, before)
	k.v.applyLocal(apikey.Event{Kind: apikey.EventCreated, Hash: newKey.Hash, Key: &newKey}, before)
	return newKey, oldKey, nil
}

// settle brings this replica's memory up to date with the keys a write
// named when the write was a retry of one already applied
// (apikey.Replayed): the first attempt's NOTIFY may not have reached this
// replica yet, and a write answered here is seen here when it returns, as
// any other. It re-reads each key (and a rotated key's successor) and
// applies what is stored; if it cannot, the retry answers that error, to
// be retried again, rather than an answer memory does not yet reflect.
func (k *AdminKeys) settle(ctx context.Context, err error, ids ...uuid.UUID) error {
	var r *apikey.Replayed
	if !errors.As(err, &r) {
		return err
	}
	if len(r.KeyIDs) > 0 {
		ids = r.KeyIDs // the keys the first attempt returned (a created key's too)
	}
	for hops := 0; len(ids) > 0 && hops < 4; hops++ {
		id := ids[0]
		ids = ids[1:]
		before := k.v.mem.snapshot()
		rec, gerr := k.store.GetKey(ctx, id)
		if errors.Is(gerr, apikey.ErrNotFound) {
			continue // nothing of it to hold
		}
		if gerr != nil {
			return gerr
		}
		switch {
		case rec.RevokedAt != nil:
			k.v.applyLocal(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, before)
		case rec.UpdatedAt != nil:
			k.v.applyLocal(apikey.Event{Kind: apikey.EventUpdated, Hash: rec.Hash, At: *rec.UpdatedAt, Key: &rec}, before)
		default:
			k.v.applyLocal(apikey.Event{Kind: apikey.EventCreated, Hash: rec.Hash, Key: &rec}, before)
		}
		if rec.RotatedTo != uuid.Nil {
			ids = append(ids, rec.RotatedTo)
		}
	}
	return err
}

// ListAuditEvents reads a page of the audit trail.
func (k *AdminKeys) ListAuditEvents(ctx context.Context, q apikey.AuditQuery) ([]apikey.AuditEvent, apikey.Cursor, error) {
	return k.store.ListAuditEvents(ctx, q)
}

// GetKey reads a key.
func (k *AdminKeys) GetKey(ctx context.Context, id uuid.UUID) (apikey.Key, error) {
	return k.store.GetKey(ctx, id)
}

// ListKeys reads a page of keys.
func (k *AdminKeys) ListKeys(ctx context.Context, p apikey.ListParams) ([]apikey.Key, apikey.Cursor, error) {
	return k.store.ListKeys(ctx, p)
}

// KeyByHash reads a key by the SHA-256 of its secret.
func (k *AdminKeys) KeyByHash(ctx context.Context, h keys.Hash) (apikey.Key, error) {
	return k.store.KeyByHash(ctx, h)
}

// ReportLeak records a leak report and, with revoke, revokes the key in
// the same transaction; a key it revokes is REVOKED here when it returns.
func (k *AdminKeys) ReportLeak(ctx context.Context, r apikey.LeakReport, revoke bool) (apikey.Key, string, error) {
	before := k.v.mem.snapshot()
	rec, action, err := k.store.ReportLeak(ctx, r, revoke)
	if err != nil {
		return rec, action, err
	}
	switch {
	case action == apikey.LeakRevoked:
		k.v.applyLocal(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, before)
	case rec.RevokedAt != nil:
		// Already revoked, by another replica whose NOTIFY may not have
		// reached this one: answering "already revoked" while memory still
		// says VALID would contradict itself. No NOTIFY comes of this
		// write, so none is expected (as a sync's change).
		k.v.applyRemote(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, fromSync)
	}
	return rec, action, nil
}
