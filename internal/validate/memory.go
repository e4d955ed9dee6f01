package validate

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// lookupResult is shared by every caller joined on one lookup.
type lookupResult struct {
	key   apikey.Key
	found bool
}

// lookup asks the database for h: joined with concurrent lookups of the
// same hash, then batched with other lookups (see batch.go).
func (v *Validator) lookup(ctx context.Context, h keys.Hash) (Result, error) {
	st := &v.stripes[h[0]]
	epoch := st.epoch.Load()
	var flight [40]byte
	copy(flight[:], h[:])
	for i := 0; i < 8; i++ {
		flight[32+i] = byte(epoch >> (8 * i))
	}
	ch := v.sf.DoChan(string(flight[:]), func() (any, error) { return v.fetch(h, epoch) })
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if r.Err != nil {
		return Result{}, r.Err
	}
	lr := r.Val.(lookupResult)
	if !lr.found {
		return Result{Code: NotFound, Path: PathLookup}, nil
	}
	k := lr.key
	now := v.now()
	code := Judge(&k, now)
	if code == Valid {
		v.recordUse(k.ID, now)
	}
	return Result{Code: code, Key: &k, Path: PathLookup}, nil
}

// fill runs set under h's stripe lock, unless a change touched the stripe
// since the lookup began (its answer may predate the change).
func (v *Validator) fill(h keys.Hash, epoch uint64, set func()) {
	st := &v.stripes[h[0]]
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.epoch.Load() == epoch {
		set()
	}
}

// source says where a change applied to memory came from.
type source uint8

const (
	fromLocal  source = iota // this replica's own write (Keys)
	fromNotify               // another replica's NOTIFY, or this one's echo
	fromSync                 // incremental sync
)

func (s source) String() string {
	switch s {
	case fromLocal:
		return "local"
	case fromNotify:
		return "notify"
	}
	return "sync"
}

// apply makes a change to a key visible in memory. Local writes apply it
// before returning to their caller; other replicas apply it from NOTIFY or
// incremental sync.
func (v *Validator) apply(e apikey.Event, src source) { v.applyAfter(e, src, nil) }

// epochs is every stripe's epoch, read before an admin write: see
// applyAfter.
type epochs [256]uint64

func (v *Validator) epochs() *epochs {
	var out epochs
	for i := range v.stripes {
		out[i] = v.stripes[i].epoch.Load()
	}
	return &out
}

// applyAfter is apply for a local update whose write began when the stripe
// epochs were before: its record (e.Key) is cached only if no other change
// to the key's stripe reached memory meanwhile — checked under the stripe
// lock, which every change takes. Otherwise the record may already be out
// of date (another replica's revocation committed right after it and its
// NOTIFY was applied first, or a later update on this replica was applied
// first), and memory only drops the key, whose next Validate looks it up.
func (v *Validator) applyAfter(e apikey.Event, src source, before *epochs) {
	switch src {
	case fromLocal:
		v.expectEcho(e.Kind, e.Hash, e.At)
	case fromNotify:
		if _, mine := v.echoes.Invalidate(echoKey{e.Kind, e.Hash, e.At.UnixMicro()}); mine {
			return // already applied when this replica made the change
		}
	}
	st := &v.stripes[e.Hash[0]]
	switch e.Kind {
	case apikey.EventCreated:
		v.filter.add(e.Hash)
		st.mu.Lock()
		st.epoch.Add(1)
		// A key is never un-revoked: a late "created" (a slow NOTIFY, a sync
		// that read the row before its revocation) keeps a REVOKED answer.
		if n, ok := v.neg.GetEntryQuietly(e.Hash); !ok || n.Value.code != Revoked {
			v.neg.Invalidate(e.Hash)
		}
		st.mu.Unlock()
	case apikey.EventRevoked:
		st.mu.Lock()
		st.epoch.Add(1)
		old, had := v.pos.Invalidate(e.Hash)
		rec := e.Key
		if rec == nil {
			// The record memory holds, as a VALID answer or as another
			// refusal (EXPIRED, DISABLED), now revoked.
			var k apikey.Key
			known := had
			if had {
				k = old.key
			} else if n, ok := v.neg.GetEntryQuietly(e.Hash); ok && n.Value.key != nil && n.Value.code != Revoked {
				k, known = *n.Value.key, true
			} else if ok && n.Value.code == NotFound {
				// A NOT_FOUND remembered for a key that exists: forget it,
				// so the next Validate looks it up and answers REVOKED.
				v.neg.Invalidate(e.Hash)
			}
			if known {
				at := e.At
				if at.IsZero() {
					at = v.now()
				}
				k.RevokedAt = &at
				rec = &k
			}
		}
		if rec != nil {
			// Known record: answer REVOKED from memory from now on. Otherwise
			// the next Validate looks the key up once and caches the answer.
			v.neg.Set(e.Hash, negEntry{code: Revoked, key: rec})
		}
		st.mu.Unlock()
	case apikey.EventUpdated:
		// The record changed (fields, expiry, enabled, allowed addresses,
		// limit): what memory holds of it is out of date. The replica that
		// made the change puts the new record in its place; the others
		// look it up on the next Validate. The filter learns the key too,
		// in case a new expiry brought back a key it had dropped.
		v.filter.add(e.Hash)
		st.mu.Lock()
		if before != nil && st.epoch.Load() != before[e.Hash[0]] {
			e.Key = nil
		}
		st.epoch.Add(1)
		v.pos.Invalidate(e.Hash)
		if n, ok := v.neg.GetEntryQuietly(e.Hash); !ok || n.Value.code != Revoked {
			v.neg.Invalidate(e.Hash)
			if rec := e.Key; rec != nil {
				now := v.now()
				switch code := Judge(rec, now); code {
				case Valid:
					v.pos.Set(e.Hash, &posEntry{key: *rec, fetched: now})
				case Revoked:
				default:
					v.neg.Set(e.Hash, negEntry{code: code, key: rec})
				}
			}
		}
		st.mu.Unlock()
	default:
		return
	}
	v.metrics.events.WithLabelValues(string(e.Kind), src.String()).Inc()
}

// KeyStore is the one interface for the admin reads and writes of keys.
// *store.Store implements it over PostgreSQL; *Keys implements it over a
// KeyStore, applying each write to this replica's memory before it
// returns. The service's handlers take a KeyStore (a *Keys), so a fake
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

// Keys is the one door for admin reads and writes. Reads go to the store.
// A write goes to the store (whose transaction sends NOTIFY to the other
// replicas) and its effect is applied to this replica's memory before the
// write returns, so no Validate that starts afterwards on this replica can
// answer from before it. Every method is written out, reads included, so
// that a write added to KeyStore cannot pass through unseen by memory.
type Keys struct {
	store KeyStore
	v     *Validator
}

var _ KeyStore = (*Keys)(nil)

// Keys returns the admin door to ks whose writes v sees at once.
func (v *Validator) Keys(ks KeyStore) *Keys { return &Keys{store: ks, v: v} }

// CreateKey stores a new key; it is VALID here when CreateKey returns.
func (k *Keys) CreateKey(ctx context.Context, nk apikey.NewKey) (apikey.Key, error) {
	rec, err := k.store.CreateKey(ctx, nk)
	if err != nil {
		return rec, err
	}
	k.v.apply(apikey.Event{Kind: apikey.EventCreated, Hash: rec.Hash, Key: &rec}, fromLocal)
	return rec, nil
}

// RevokeKey revokes a key; it is REVOKED here when RevokeKey returns.
func (k *Keys) RevokeKey(ctx context.Context, id uuid.UUID) (apikey.Key, error) {
	rec, err := k.store.RevokeKey(ctx, id)
	if err != nil {
		return rec, k.settle(ctx, err, id)
	}
	k.v.apply(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, fromLocal)
	return rec, nil
}

// UpdateKey changes a key; the change is what Validate answers here when
// UpdateKey returns (cached answers and the key's limit included).
func (k *Keys) UpdateKey(ctx context.Context, id uuid.UUID, u apikey.Update) (apikey.Key, bool, error) {
	before := k.v.epochs()
	// This replica's own NOTIFY is known as its echo before it can arrive,
	// so it does not count as another change to the stripe.
	var pending *apikey.Key
	u.BeforeCommit = func(rec apikey.Key) {
		pending = &rec
		k.v.expectEcho(apikey.EventUpdated, rec.Hash, *rec.UpdatedAt)
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
	k.v.applyAfter(apikey.Event{Kind: apikey.EventUpdated, Hash: rec.Hash, At: *rec.UpdatedAt, Key: &rec}, fromLocal, before)
	return rec, true, nil
}

// RotateKey issues a key's successor; here, when RotateKey returns, the new
// key is VALID and the old one answers by its new expiry.
func (k *Keys) RotateKey(ctx context.Context, id uuid.UUID, r apikey.Rotation) (newKey, oldKey apikey.Key, err error) {
	before := k.v.epochs()
	var pendingNew, pendingOld *apikey.Key
	r.BeforeCommit = func(newKey, oldKey apikey.Key) {
		pendingNew, pendingOld = &newKey, &oldKey
		k.v.expectEcho(apikey.EventCreated, newKey.Hash, time.Time{})
		k.v.expectEcho(apikey.EventUpdated, oldKey.Hash, *oldKey.UpdatedAt)
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
	k.v.applyAfter(apikey.Event{Kind: apikey.EventUpdated, Hash: oldKey.Hash, At: *oldKey.UpdatedAt, Key: &oldKey}, fromLocal, before)
	k.v.apply(apikey.Event{Kind: apikey.EventCreated, Hash: newKey.Hash, Key: &newKey}, fromLocal)
	return newKey, oldKey, nil
}

// settle brings this replica's memory up to date with the keys a write
// named when the write was a retry of one already applied
// (apikey.Replayed): the first attempt's NOTIFY may not have reached this
// replica yet, and a write answered here is seen here when it returns, as
// any other. It re-reads each key (and a rotated key's successor) and
// applies what is stored; if it cannot, the retry answers that error, to
// be retried again, rather than an answer memory does not yet reflect.
func (k *Keys) settle(ctx context.Context, err error, ids ...uuid.UUID) error {
	var r *apikey.Replayed
	if !errors.As(err, &r) {
		return err
	}
	for hops := 0; len(ids) > 0 && hops < 4; hops++ {
		id := ids[0]
		ids = ids[1:]
		before := k.v.epochs()
		rec, gerr := k.store.GetKey(ctx, id)
		if errors.Is(gerr, apikey.ErrNotFound) {
			continue // nothing of it to hold
		}
		if gerr != nil {
			return gerr
		}
		switch {
		case rec.RevokedAt != nil:
			k.v.apply(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, fromLocal)
		case rec.UpdatedAt != nil:
			k.v.applyAfter(apikey.Event{Kind: apikey.EventUpdated, Hash: rec.Hash, At: *rec.UpdatedAt, Key: &rec}, fromLocal, before)
		default:
			k.v.apply(apikey.Event{Kind: apikey.EventCreated, Hash: rec.Hash, Key: &rec}, fromLocal)
		}
		if rec.RotatedTo != uuid.Nil {
			ids = append(ids, rec.RotatedTo)
		}
	}
	return err
}

// ListAuditEvents reads a page of the audit trail.
func (k *Keys) ListAuditEvents(ctx context.Context, q apikey.AuditQuery) ([]apikey.AuditEvent, apikey.Cursor, error) {
	return k.store.ListAuditEvents(ctx, q)
}

// GetKey reads a key.
func (k *Keys) GetKey(ctx context.Context, id uuid.UUID) (apikey.Key, error) {
	return k.store.GetKey(ctx, id)
}

// ListKeys reads a page of keys.
func (k *Keys) ListKeys(ctx context.Context, p apikey.ListParams) ([]apikey.Key, apikey.Cursor, error) {
	return k.store.ListKeys(ctx, p)
}

// KeyByHash reads a key by the SHA-256 of its secret.
func (k *Keys) KeyByHash(ctx context.Context, h keys.Hash) (apikey.Key, error) {
	return k.store.KeyByHash(ctx, h)
}

// ReportLeak records a leak report and, with revoke, revokes the key in
// the same transaction; a key it revokes is REVOKED here when it returns.
func (k *Keys) ReportLeak(ctx context.Context, r apikey.LeakReport, revoke bool) (apikey.Key, string, error) {
	rec, action, err := k.store.ReportLeak(ctx, r, revoke)
	if err != nil {
		return rec, action, err
	}
	if action == apikey.LeakRevoked {
		k.v.apply(apikey.Event{Kind: apikey.EventRevoked, Hash: rec.Hash, At: *rec.RevokedAt, Key: &rec}, fromLocal)
	}
	return rec, action, nil
}

// holdsUpdate reports whether memory holds h's record as of the update at
// updatedAt (so an incremental sync need not drop it again).
func (v *Validator) holdsUpdate(h keys.Hash, updatedAt time.Time) bool {
	var rec *apikey.Key
	if p, ok := v.pos.GetEntryQuietly(h); ok {
		rec = &p.Value.key
	} else if n, ok := v.neg.GetEntryQuietly(h); ok {
		rec = n.Value.key
	}
	return rec != nil && rec.UpdatedAt != nil && rec.UpdatedAt.Equal(updatedAt)
}

// holds reports whether memory holds an answer for h (cached either way).
func (v *Validator) holds(h keys.Hash) bool {
	if _, ok := v.pos.GetEntryQuietly(h); ok {
		return true
	}
	_, ok := v.neg.GetEntryQuietly(h)
	return ok
}

// expectEcho notes that this replica's NOTIFY of a change it applies itself
// will come back, so it is not applied twice.
func (v *Validator) expectEcho(kind apikey.EventKind, h keys.Hash, at time.Time) {
	v.echoes.Set(echoKey{kind, h, at.UnixMicro()}, struct{}{})
}

// unsure handles a write that failed after its NOTIFY's echo was expected:
// the commit may still have happened (a cancelled or broken connection
// during COMMIT), and then its NOTIFY comes back and, as an expected echo,
// would be ignored. So the echo is forgotten and the change is applied as
// if sync had found it: the key is dropped (and, created, added to the
// filter), and its next Validate looks it up. Safe either way.
func (v *Validator) unsure(kind apikey.EventKind, rec *apikey.Key) {
	at := time.Time{}
	if kind == apikey.EventUpdated {
		at = *rec.UpdatedAt
	}
	v.echoes.Invalidate(echoKey{kind, rec.Hash, at.UnixMicro()})
	v.apply(apikey.Event{Kind: kind, Hash: rec.Hash, At: at}, fromSync)
}
