package validate

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/verify"
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
		return Result{Code: outcome.NotFound, Path: PathLookup}, nil
	}
	k := lr.key
	now := v.now()
	code := verify.State(&k, now)
	if code == outcome.Valid {
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
	fromLocal  source = iota // this replica's own write (AdminKeys)
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
		if n, ok := v.neg.GetEntryQuietly(e.Hash); !ok || n.Value.code != outcome.Revoked {
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
			} else if n, ok := v.neg.GetEntryQuietly(e.Hash); ok && n.Value.key != nil && n.Value.code != outcome.Revoked {
				k, known = *n.Value.key, true
			} else if ok && n.Value.code == outcome.NotFound {
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
			v.neg.Set(e.Hash, negEntry{code: outcome.Revoked, key: rec})
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
		if n, ok := v.neg.GetEntryQuietly(e.Hash); !ok || n.Value.code != outcome.Revoked {
			v.neg.Invalidate(e.Hash)
			if rec := e.Key; rec != nil {
				now := v.now()
				switch code := verify.State(rec, now); code {
				case outcome.Valid:
					v.pos.Set(e.Hash, &posEntry{key: *rec, fetched: now})
				case outcome.Revoked:
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
