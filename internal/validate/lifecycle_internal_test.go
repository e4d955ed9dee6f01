package validate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// nopStore satisfies Store; these tests never reach the database.
type nopStore struct{ Store }

// TestLocalUpdateCachesItsRecordOnlyIfNothingOvertookIt: when another
// change to the key's stripe reached memory while an update's write ran
// (another replica's revocation committed right after it, or a later
// update on this replica), the writer must not put its possibly stale
// record in the cache; otherwise it does, and answers from it at once.
func TestLocalUpdateCachesItsRecordOnlyIfNothingOvertookIt(t *testing.T) {
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Store: nopStore{}, Format: f, Tuning: testTuning})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	rec := apikey.Key{Hash: keys.Hash{7, 1}, Enabled: true, UpdatedAt: &at}
	update := apikey.Event{Kind: apikey.EventUpdated, Hash: rec.Hash, At: at, Key: &rec}

	before := v.mem.snapshot()
	v.applyLocal(update, before)
	if _, ok := v.pos.GetIfPresent(rec.Hash); !ok {
		t.Fatal("an update nothing overtook did not cache its record")
	}

	// A key memory holds nothing of: another replica's revocation arrives
	// while this replica's update of it is being written, and finds
	// nothing to mark revoked.
	other := rec
	other.Hash = keys.Hash{7, 2}
	before = v.mem.snapshot()
	v.applyRemote(apikey.Event{Kind: apikey.EventRevoked, Hash: other.Hash, At: at.Add(time.Millisecond)}, fromNotify)
	v.applyLocal(apikey.Event{Kind: apikey.EventUpdated, Hash: other.Hash, At: at, Key: &other}, before)
	if p, ok := v.pos.GetIfPresent(other.Hash); ok {
		t.Fatalf("an overtaken update cached its record (VALID for a revoked key): %+v", p.key)
	}
}

// ambiguousCommit is a KeyStore whose UpdateKey gets as far as the commit
// (BeforeCommit runs) and then fails, as when the connection breaks during
// COMMIT: the write may have happened.
type ambiguousCommit struct {
	KeyStore
	rec apikey.Key
}

func (a ambiguousCommit) UpdateKey(_ context.Context, _ uuid.UUID, u apikey.Update) (apikey.Key, bool, error) {
	u.BeforeCommit(a.rec)
	return apikey.Key{}, false, errors.New("connection lost during COMMIT")
}

// TestAnAmbiguousCommitDropsTheKeyAndExpectsNoEcho: after an update that
// failed at its commit, the writer drops its cached answer, and the
// update's NOTIFY, should it come, is applied, not taken for an echo.
func TestAnAmbiguousCommitDropsTheKeyAndExpectsNoEcho(t *testing.T) {
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Store: nopStore{}, Format: f, Tuning: testTuning})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	old := apikey.Key{Hash: keys.Hash{9, 9}, Enabled: true}
	v.pos.Set(old.Hash, &posEntry{key: old, fetched: time.Now()})
	disabled := old
	disabled.Enabled, disabled.UpdatedAt = false, &at
	k := v.AdminKeys(ambiguousCommit{rec: disabled})
	if _, _, err := k.UpdateKey(context.Background(), uuid.New(), apikey.Update{Fields: []string{apikey.FieldEnabled}}); err == nil {
		t.Fatal("the failed update succeeded")
	}
	if _, ok := v.pos.GetIfPresent(old.Hash); ok {
		t.Fatal("the writer still answers from its old record after a commit that may have happened")
	}
	if _, expected := v.mem.echoes.GetIfPresent(echoKey{apikey.EventUpdated, old.Hash, at.UnixMicro()}); expected {
		t.Fatal("the update's NOTIFY would be taken for an echo")
	}
}

// TestAWritersNotifyEchoIsAppliedOnce: a local write's NOTIFY coming back
// to the writer is swallowed once (applying it again would bump the
// stripe and drop lookups' answers for nothing); the same event heard
// again is another write's and is applied.
func TestAWritersNotifyEchoIsAppliedOnce(t *testing.T) {
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Store: nopStore{}, Format: f, Tuning: testTuning})
	if err != nil {
		t.Fatal(err)
	}
	rec := apikey.Key{Hash: keys.Hash{5, 5}, Enabled: true}
	created := apikey.Event{Kind: apikey.EventCreated, Hash: rec.Hash, Key: &rec}
	applied := func(src source) float64 { return EventsApplied(v, string(apikey.EventCreated), src.String()) }

	// As AdminKeys.CreateKey: the echo is expected before the write commits.
	v.mem.expectEcho(apikey.EventCreated, rec.Hash, time.Time{})
	v.applyLocal(created, v.mem.snapshot())
	epoch := v.mem.begin(rec.Hash)
	v.applyRemote(apikey.Event{Kind: created.Kind, Hash: created.Hash}, fromNotify)
	if applied(fromLocal) != 1 || applied(fromNotify) != 0 {
		t.Fatalf("local %v, notify %v: the echo was applied", applied(fromLocal), applied(fromNotify))
	}
	if v.mem.begin(rec.Hash) != epoch {
		t.Fatal("the echo bumped the stripe")
	}
	v.applyRemote(apikey.Event{Kind: created.Kind, Hash: created.Hash}, fromNotify)
	if applied(fromNotify) != 1 {
		t.Fatal("a second NOTIFY like the echo was swallowed too")
	}
}
