package validate

import (
	"context"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keyevents"
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
// same hash holding the same ticket, then batched with other lookups (see
// batch.go).
func (v *Validator) lookup(ctx context.Context, h keys.Hash) (Result, error) {
	t := v.mem.begin(h)
	var flight [40]byte
	copy(flight[:], h[:])
	for i := 0; i < 8; i++ {
		flight[32+i] = byte(t >> (8 * i))
	}
	ch := v.sf.DoChan(string(flight[:]), func() (any, error) { return v.fetch(h, t) })
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

// applyLocal makes this replica's own write visible in memory before the
// write returns to its caller. before is the stripe epochs read before the
// write began (mem.snapshot): an update's record (e.Key) is cached only if
// no other change to the key's stripe reached memory meanwhile; otherwise
// the record may already be out of date, and memory only drops the key,
// whose next Validate looks it up. A creation and a revocation hold
// whatever came meanwhile (a key is never un-revoked). The write's NOTIFY
// echo is expected, so it is not applied again when it comes back.
func (v *Validator) applyLocal(e apikey.Event, before *epochs) {
	if e.Kind != apikey.EventCreated {
		// A creation expects its echo before it commits (CreateKey,
		// RotateKey); expected again here it would linger for a minute
		// once the echo had come.
		v.mem.expectEcho(e.Kind, e.Hash, e.At)
	}
	v.applyEvent(e, fromLocal, func(rule func(stale bool)) { v.mem.changeAfter(e.Hash, before, rule) })
}

// applyRemote makes a change another replica made visible in memory: from
// NOTIFY (fromNotify; this replica's own echo is swallowed) or found by
// incremental sync (fromSync).
func (v *Validator) applyRemote(e apikey.Event, src source) {
	if src == fromNotify && v.mem.isEcho(e.Kind, e.Hash, e.At) {
		return // already applied when this replica made the change
	}
	v.applyEvent(e, src, func(rule func(stale bool)) { v.mem.change(e.Hash, func() { rule(false) }) })
}

// applyEvent applies e's rule to the caches as a change to its stripe
// (change runs rule under the stripe lock, after bumping its epoch; stale:
// see applyLocal).
//
// In memory mode the key's record is written too: the event's record when
// it has one that is not stale (a creation's always, see there), else it
// is dropped and fetched again in the background (prefetch), and
// meanwhile the filter and a lookup answer.
func (v *Validator) applyEvent(e apikey.Event, src source, change func(rule func(stale bool))) {
	v.reads.changed(e.Hash) // before memory changes: read on the primary until the replica has it
	// The key's keyspace, for watchers, read before the change drops what
	// memory holds of the key.
	ks := v.keyspaceOf(e)
	fetch := false
	switch e.Kind {
	case apikey.EventCreated:
		v.filter.add(e.Hash)
		change(func(stale bool) {
			// A key is never un-revoked: a late "created" (a slow NOTIFY, a
			// sync that read the row before its revocation) keeps a REVOKED
			// answer.
			n, ok := v.neg.GetEntryQuietly(e.Hash)
			if !ok || n.Value.code != outcome.Revoked {
				v.neg.Invalidate(e.Hash)
			}
			if ok && n.Value.code == outcome.Revoked {
				return
			}
			if r, held := v.res.get(&e.Hash); held && r.RevokedAt != nil {
				return
			}
			// Memory mode's record, written whether or not the mode is on
			// (see revoked). A record in hand is trusted unless the stripe
			// moved since the write began (stale): then another change,
			// perhaps this key's revocation by a replica that learned its
			// id, may have come first, and the record is fetched again. A
			// creation's own NOTIFY echo no longer moves the stripe (it is
			// expected before the commit), so that is rare.
			switch {
			case e.Key != nil && !stale:
				v.remember(e.Key)
			case e.Key != nil:
				v.res.drop(e.Hash)
				fetch = v.res.active()
			case !v.res.has(e.Hash):
				fetch = v.res.active() // another replica's creation: fetch its record
			}
		})
	case apikey.EventRevoked:
		change(func(bool) { v.revoked(e) })
	case apikey.EventUpdated:
		// The record changed (fields, expiry, enabled, allowed addresses,
		// limit): what memory holds of it is out of date. The replica that
		// made the change puts the new record in its place; the others
		// look it up on the next Validate. The filter learns the key too,
		// in case a new expiry brought back a key it had dropped.
		v.filter.add(e.Hash)
		change(func(stale bool) {
			rec := e.Key
			if stale {
				rec = nil
			}
			fetch = v.updated(e.Hash, rec)
		})
	default:
		return
	}
	v.metrics.events.WithLabelValues(string(e.Kind), src.String()).Inc()
	v.cfg.Events.Publish(eventKinds[e.Kind], e.Hash[:], ks)
	if fetch {
		v.prefetch(e.Hash)
	}
}

// eventKinds are the kinds of key events watchers hear of.
var eventKinds = map[apikey.EventKind]keyevents.Kind{
	apikey.EventCreated: keyevents.Created, apikey.EventUpdated: keyevents.Updated, apikey.EventRevoked: keyevents.Revoked,
}

// keyspaceOf is the keyspace of e's key when this replica knows it (the
// event's record or keyspace, memory mode's record, a cached answer's),
// else uuid.Nil:
// WatchKeyEvents then tells watchers of every keyspace (a hash prefix
// names no key).
func (v *Validator) keyspaceOf(e apikey.Event) uuid.UUID {
	switch {
	case v.cfg.Events == nil:
		return uuid.Nil
	case e.Key != nil:
		return e.Key.KeyspaceID
	case e.Keyspace != uuid.Nil:
		return e.Keyspace
	}
	if r, ok := v.res.get(&e.Hash); ok {
		return r.KeyspaceID
	}
	if p, ok := v.pos.GetEntryQuietly(e.Hash); ok {
		return p.Value.key.KeyspaceID
	}
	if n, ok := v.neg.GetEntryQuietly(e.Hash); ok && n.Value.key != nil {
		return n.Value.key.KeyspaceID
	}
	return uuid.Nil
}

// revoked is a revocation's rule, under the stripe lock. Memory mode
// fetches nothing for it: a revoked key memory does not know is answered
// by the filter and a lookup.
func (v *Validator) revoked(e apikey.Event) {
	old, had := v.pos.Invalidate(e.Hash)
	rec := e.Key
	if rec == nil {
		// The record memory holds, as a VALID answer or as another refusal
		// (EXPIRED, DISABLED), or in memory mode, now revoked.
		var k apikey.Key
		known := had
		if had {
			k = old.key
		} else if n, ok := v.neg.GetEntryQuietly(e.Hash); ok && n.Value.key != nil && n.Value.code != outcome.Revoked {
			k, known = *n.Value.key, true
		} else if r, inMemory := v.res.get(&e.Hash); inMemory {
			if ok && n.Value.code == outcome.NotFound {
				v.neg.Invalidate(e.Hash)
			}
			k, known = r, true
		} else if ok && n.Value.code == outcome.NotFound {
			// A NOT_FOUND remembered for a key that exists: forget it, so
			// the next Validate looks it up and answers REVOKED.
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
		// Written whether or not memory mode is on: a load entering it
		// records what changed while it read (resident.write).
		v.remember(rec)
		return
	}
	// Not known here: dropped (the filter and a lookup answer for it, as
	// in filter mode).
	v.res.drop(e.Hash)
}

// updated is an update's rule, under the stripe lock: memory drops what it
// holds of h (a REVOKED answer stays), and holds rec instead when given.
// It reports whether memory mode must fetch the record again.
func (v *Validator) updated(h keys.Hash, rec *apikey.Key) (fetch bool) {
	v.pos.Invalidate(h)
	if n, ok := v.neg.GetEntryQuietly(h); ok && n.Value.code == outcome.Revoked {
		return false
	}
	v.neg.Invalidate(h)
	// Written whether or not memory mode is on (see revoked).
	if rec != nil {
		v.remember(rec)
	} else {
		v.res.drop(h)
		fetch = v.res.active()
	}
	if rec == nil {
		return fetch
	}
	now := v.now()
	switch code := verify.State(rec, now); code {
	case outcome.Valid:
		v.pos.Set(h, &posEntry{key: *rec, fetched: now})
	case outcome.Revoked:
	default:
		v.neg.Set(h, negEntry{code: code, key: rec})
	}
	return false
}

// holdsUpdate reports whether memory holds h's record as of the update at
// updatedAt (so an incremental sync need not drop it again).
func (v *Validator) holdsUpdate(h keys.Hash, updatedAt time.Time) bool {
	var rec *apikey.Key
	if p, ok := v.pos.GetEntryQuietly(h); ok {
		rec = &p.Value.key
	} else if n, ok := v.neg.GetEntryQuietly(h); ok {
		rec = n.Value.key
	} else if k, ok := v.res.get(&h); ok {
		rec = &k
	}
	return rec != nil && rec.UpdatedAt != nil && rec.UpdatedAt.Equal(updatedAt)
}

// holds reports whether memory holds an answer for h (cached either way,
// or its record in memory mode).
func (v *Validator) holds(h keys.Hash) bool {
	if _, ok := v.pos.GetEntryQuietly(h); ok {
		return true
	}
	if _, ok := v.neg.GetEntryQuietly(h); ok {
		return true
	}
	return v.res.has(h)
}

// unsure handles a write that failed after its NOTIFY's echo was expected:
// the commit may still have happened (a cancelled or broken connection
// during COMMIT), and then its NOTIFY comes back and, as an expected echo,
// would be ignored. So the echo is forgotten (mem.unsure) and the change
// is applied as if sync had found it: the key is dropped (and, created,
// added to the filter), and its next Validate looks it up. Safe either way.
func (v *Validator) unsure(kind apikey.EventKind, rec *apikey.Key) {
	at := time.Time{}
	if kind == apikey.EventUpdated {
		at = *rec.UpdatedAt
	}
	v.mem.unsure(kind, rec.Hash, at)
	v.applyRemote(apikey.Event{Kind: kind, Hash: rec.Hash, At: at}, fromSync)
}
