package tenancy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/perm"
)

// fakeStore is the registry's store seam: the tables as lists.
type fakeStore struct {
	kss    []apikey.Keyspace
	creds  []apikey.Credential
	owners []apikey.Owner
	reads  int
}

func (f *fakeStore) AllOwners(context.Context) ([]apikey.Owner, error) {
	return append([]apikey.Owner(nil), f.owners...), nil
}

func (f *fakeStore) AllKeyspaces(context.Context) ([]apikey.Keyspace, error) {
	f.reads++
	return append([]apikey.Keyspace(nil), f.kss...), nil
}

func (f *fakeStore) AllCredentials(context.Context) ([]apikey.Credential, error) {
	return append([]apikey.Credential(nil), f.creds...), nil
}

func (f *fakeStore) TouchCredentialsUsed(context.Context, []uuid.UUID, []time.Time) error { return nil }

func newRegistry(t *testing.T, st *fakeStore, boot ...apikey.Credential) (*Registry, *bytes.Buffer) {
	t.Helper()
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := New(Config{Store: st, Format: f, Bootstrap: boot, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r, &logs
}

// TestLoadMakesEveryKeyspacesPrefixAKeyOfIt: after Load, a key generated
// in a keyspace's space is located there, and the keyspace is found by
// name and id; before Load, the registry is not loaded (the auth
// interceptor then answers UNAVAILABLE for unknown secrets).
func TestLoadMakesEveryKeyspacesPrefixAKeyOfIt(t *testing.T) {
	inf := apikey.Keyspace{ID: uuid.New(), Name: "inference", Prefix: "inf"}
	st := &fakeStore{kss: []apikey.Keyspace{{ID: apikey.DefaultKeyspaceID, Name: "default"}, inf}}
	r, _ := newRegistry(t, st)
	if r.Loaded() {
		t.Fatal("loaded before Load")
	}
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur := r.Current()
	if !r.Loaded() || cur.Space(inf.ID) != 1 {
		t.Fatalf("loaded %v, space of inference %d", r.Loaded(), cur.Space(inf.ID))
	}
	g, err := cur.Format.GenerateIn(cur.Space(inf.ID), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, space, err := cur.Format.Locate(g.Secret); err != nil || cur.Spaces[space] != inf.ID {
		t.Fatalf("a key of inference located in space %d (%v)", space, err)
	}
	for _, ref := range []string{"inference", inf.ID.String()} {
		if ks, ok := cur.Keyspace(ref); !ok || ks.ID != inf.ID {
			t.Errorf("Keyspace(%q) = %v, %v", ref, ks, ok)
		}
	}
	if ks, _ := cur.Keyspace("default"); ks.Prefix != "ks" {
		t.Errorf("the default keyspace's prefix is %q, want the configured ks", ks.Prefix)
	}
}

// TestClashingPrefixIsLeftOutAndLogged: a keyspace whose prefix the
// configured format now uses is left out (its keys MALFORMED), never
// answered as the default keyspace's, and the log says so.
func TestClashingPrefixIsLeftOutAndLogged(t *testing.T) {
	clash := apikey.Keyspace{ID: uuid.New(), Name: "old", Prefix: "ks"}
	r, logs := newRegistry(t, &fakeStore{kss: []apikey.Keyspace{{ID: apikey.DefaultKeyspaceID, Name: "default"}, clash}})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Current().Keyspace("old"); ok || r.Current().Space(clash.ID) != -1 {
		t.Fatal("a keyspace whose prefix clashes was kept")
	}
	if !strings.Contains(logs.String(), "keyspace left out") {
		t.Fatalf("not logged: %s", logs)
	}
}

// TestBootstrapSecretIsNeverShadowed: a stored credential with a bootstrap
// token's secret does not replace it, and one with a bootstrap token's
// name is logged.
func TestBootstrapSecretIsNeverShadowed(t *testing.T) {
	tok := "bootstrap-token-0123456789"
	boot := apikey.Credential{Name: "admin-1", Hash: sha256.Sum256([]byte(tok)), Permissions: perm.All, AllKeyspaces: true, Bootstrap: true}
	stored := apikey.Credential{ID: uuid.New(), Name: "admin-1", Hash: boot.Hash, Permissions: perm.Of(perm.KeysRead), AllKeyspaces: true}
	r, logs := newRegistry(t, &fakeStore{kss: []apikey.Keyspace{{ID: apikey.DefaultKeyspaceID, Name: "default"}}, creds: []apikey.Credential{stored}}, boot)
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, ok := r.Current().Credential(&boot.Hash)
	if !ok || !e.Bootstrap || e.Permissions != perm.All {
		t.Fatalf("the bootstrap token's secret finds %+v", e)
	}
	if !strings.Contains(logs.String(), "name of a bootstrap token") {
		t.Fatalf("the name clash was not logged: %s", logs)
	}
}

// TestCredentialEventsAreCoalesced: many credential events before Run
// reads are one read; a keyspace event reads at once, in the listener.
func TestCredentialEventsAreCoalesced(t *testing.T) {
	st := &fakeStore{kss: []apikey.Keyspace{{ID: apikey.DefaultKeyspaceID, Name: "default"}}}
	r, _ := newRegistry(t, st)
	h := r.Handler(nopHandler{})
	for range 100 {
		h.Changed(apikey.Event{Kind: apikey.EventCredentials})
	}
	if st.reads != 0 || len(r.kicked) != 1 {
		t.Fatalf("100 credential events: %d reads in the listener, %d reads asked of Run; want 0 and 1", st.reads, len(r.kicked))
	}
	h.Changed(apikey.Event{Kind: apikey.EventKeyspaces})
	if st.reads != 1 {
		t.Fatalf("a keyspace event: %d reads, want 1 at once", st.reads)
	}
}

type nopHandler struct{}

func (nopHandler) Changed(apikey.Event)          {}
func (nopHandler) StreamLost()                   {}
func (nopHandler) CatchUp(context.Context) error { return nil }
func (nopHandler) ListenError(error)             {}

func TestOwnersAreFoundByTheNameKeysKnowThemBy(t *testing.T) {
	ks := uuid.New()
	acme := apikey.Owner{ID: uuid.New(), KeyspaceID: ks, Name: "acme", HasCredits: true}
	st := &fakeStore{kss: []apikey.Keyspace{{ID: apikey.DefaultKeyspaceID, Name: "default"}}, owners: []apikey.Owner{acme}}
	r, _ := newRegistry(t, st)
	k := &apikey.Key{KeyspaceID: ks, Owner: "acme"}
	if r.Current().OwnerOf(k) != nil {
		t.Fatal("an owner was found before the tables were read")
	}
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o := r.Current().OwnerOf(k); o == nil || o.ID != acme.ID {
		t.Fatalf("OwnerOf(acme in its keyspace) = %v, want %s", o, acme.ID)
	}
	for _, other := range []*apikey.Key{{KeyspaceID: apikey.DefaultKeyspaceID, Owner: "acme"}, {KeyspaceID: ks, Owner: "Acme"}} {
		if o := r.Current().OwnerOf(other); o != nil {
			t.Errorf("OwnerOf(%+v) = %s: an owner of another keyspace or name must not be found", other, o.ID)
		}
	}
	if o, ok := r.Current().Owner(acme.ID); !ok || o.Name != "acme" {
		t.Errorf("Owner(id) = %v, %v", o, ok)
	}
}
