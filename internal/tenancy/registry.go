// Package tenancy holds, in every replica's memory, the keyspaces and the
// credentials: the key format with every keyspace's prefix, and the table
// of credentials by the SHA-256 of their secrets, so that checking a
// credential on the hot path is one map lookup, never a query. Both tables
// are small; each change (a write's NOTIFY, EventKeyspaces or
// EventCredentials) or sync makes the registry read them again whole, so a
// revoked credential is refused on every replica within one notification.
package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// Store is what the registry reads (*store.Store implements it).
type Store interface {
	AllKeyspaces(ctx context.Context) ([]apikey.Keyspace, error)
	AllCredentials(ctx context.Context) ([]apikey.Credential, error)
	AllOwners(ctx context.Context) ([]apikey.Owner, error)
	TouchCredentialsUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error
}

// Config is what a Registry needs.
type Config struct {
	Store Store
	// Format is the configured key format: the default keyspace's.
	Format keys.Format
	// Bootstrap are the credentials of the environment (admin and caller
	// tokens); they are in the table before anything is read.
	Bootstrap []apikey.Credential
	// OnChange, when set, is called with each new state (the validation
	// path takes its format from it), before it is visible to Current.
	OnChange func(*State)
	// Changed, when set, is called after a read whose keyspaces,
	// credentials or owners differ from the previous read's (last uses
	// aside), once the new state is visible to Current: WatchKeyEvents
	// tells callers to drop what they cached.
	Changed func()
	// SyncEvery is how often the tables are read again whatever NOTIFY
	// said (lost notifications); 0: 5s.
	SyncEvery time.Duration
	// FlushEvery is how often last uses are written; 0: 10s.
	FlushEvery time.Duration
	Log        *slog.Logger
	Now        func() time.Time
}

// Registry is the in-memory table of keyspaces and credentials.
type Registry struct {
	cfg   Config
	state atomic.Pointer[State]
	mu    sync.Mutex // one Load at a time
	// kicked asks Run to read the tables again (a credential changed).
	kicked chan struct{}
	// loaded: Load has succeeded once. Before, a secret that is no
	// bootstrap token may be a stored credential not read yet.
	loaded atomic.Bool
	// read is a digest of the last read's rows (Changed).
	read [32]byte
}

// Loaded reports whether the tables have been read once.
func (r *Registry) Loaded() bool { return r.loaded.Load() }

// kick asks Run for a read, without waiting; asks made before it reads
// are one read.
func (r *Registry) kick() {
	select {
	case r.kicked <- struct{}{}:
	default:
	}
}

// New returns a registry holding only the bootstrap credentials and the
// default keyspace, until Load.
func New(cfg Config) (*Registry, error) {
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 5 * time.Second
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Registry{cfg: cfg, kicked: make(chan struct{}, 1)}
	def := apikey.Keyspace{ID: apikey.DefaultKeyspaceID, Name: apikey.DefaultKeyspaceName}
	st, err := r.build([]apikey.Keyspace{def}, nil, nil)
	if err != nil {
		return nil, err
	}
	r.publish(st)
	return r, nil
}

// Current is the registry's present state; it never changes once
// returned (a change publishes a new one).
func (r *Registry) Current() *State { return r.state.Load() }

// Load reads both tables and publishes them. A keyspace whose prefix the
// configured formats now use is left out (its keys answer MALFORMED) and
// logged: fail closed, never answer a key by the wrong keyspace.
func (r *Registry) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	kss, err := r.cfg.Store.AllKeyspaces(ctx)
	if err != nil {
		return fmt.Errorf("reading keyspaces: %w", err)
	}
	creds, err := r.cfg.Store.AllCredentials(ctx)
	if err != nil {
		return fmt.Errorf("reading credentials: %w", err)
	}
	owners, err := r.cfg.Store.AllOwners(ctx)
	if err != nil {
		return fmt.Errorf("reading owners: %w", err)
	}
	st, err := r.build(kss, creds, r.Current())
	if err != nil {
		return err
	}
	st.setOwners(owners)
	r.publish(st)
	r.loaded.Store(true)
	if d := digestOf(kss, creds, owners); d != r.read {
		r.read = d
		if r.cfg.Changed != nil {
			r.cfg.Changed()
		}
	}
	return nil
}

// digestOf is a digest of what was read, credentials' last uses and
// owners' balances aside (they change with use, not with what a
// credential may do or which keys have a budget).
func digestOf(kss []apikey.Keyspace, creds []apikey.Credential, owners []apikey.Owner) [32]byte {
	cs := slices.Clone(creds)
	for i := range cs {
		cs[i].LastUsedAt = nil
	}
	os := slices.Clone(owners)
	for i := range os {
		os[i].Credits = nil // a balance, not a budget's shape
	}
	b, err := json.Marshal([]any{kss, cs, os})
	if err != nil {
		// Cannot tell: say changed (callers drop their caches), never "same".
		b = []byte(time.Now().String())
	}
	return sha256.Sum256(b)
}

func (r *Registry) publish(st *State) {
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(st)
	}
	r.state.Store(st)
}

// build makes a state of kss and creds; prev's last-use marks carry over.
func (r *Registry) build(kss []apikey.Keyspace, creds []apikey.Credential, prev *State) (*State, error) {
	st := &State{
		Format:   r.cfg.Format,
		Spaces:   []uuid.UUID{apikey.DefaultKeyspaceID},
		byID:     map[uuid.UUID]*apikey.Keyspace{},
		byName:   map[string]*apikey.Keyspace{},
		creds:    map[[32]byte]*Entry{},
		credByID: map[uuid.UUID]*Entry{},
	}
	for i := range kss {
		ks := &kss[i]
		if ks.ID != apikey.DefaultKeyspaceID {
			f, err := st.Format.WithSpace(ks.Prefix, len(st.Spaces))
			if err != nil {
				r.cfg.Log.Error("keyspace left out: its prefix clashes with the configured key formats; its keys answer MALFORMED until the clash is resolved",
					"keyspace", ks.Name, "prefix", ks.Prefix, "error", err)
				continue
			}
			st.Format = f
			st.Spaces = append(st.Spaces, ks.ID)
		} else {
			ks.Prefix = r.cfg.Format.Prefix()
		}
		st.list = append(st.list, ks)
		st.byID[ks.ID] = ks
		st.byName[ks.Name] = ks
	}
	st.bootstrap = r.cfg.Bootstrap
	for i := range r.cfg.Bootstrap {
		c := r.cfg.Bootstrap[i]
		st.creds[c.Hash] = &Entry{Credential: c}
	}
	for i := range creds {
		c := creds[i]
		if slices.ContainsFunc(r.cfg.Bootstrap, func(b apikey.Credential) bool { return b.Name == c.Name }) {
			r.cfg.Log.Warn("a stored credential has the name of a bootstrap token: they share an audit actor and a caller budget; rename the token in the environment",
				"name", c.Name)
		}
		if _, clash := st.creds[c.Hash]; clash {
			continue // a bootstrap token's secret is never shadowed
		}
		e := &Entry{Credential: c}
		if prev != nil {
			if old, ok := prev.credByID[c.ID]; ok {
				e.used.Store(old.used.Load())
				e.flushed.Store(old.flushed.Load())
			}
		}
		st.creds[c.Hash] = e
		st.credByID[c.ID] = e
		st.stored = append(st.stored, e)
	}
	return st, nil
}

// State is one immutable view of the keyspaces and credentials.
type State struct {
	// Format accepts every keyspace's prefix; Spaces[i] is the keyspace of
	// its space i (0: the default keyspace).
	Format    keys.Format
	Spaces    []uuid.UUID
	list      []*apikey.Keyspace // oldest first
	byID      map[uuid.UUID]*apikey.Keyspace
	byName    map[string]*apikey.Keyspace
	creds     map[[32]byte]*Entry
	credByID  map[uuid.UUID]*Entry
	stored    []*Entry // stored credentials, oldest first
	bootstrap []apikey.Credential
	// owners with budgets, by the name keys know them by; ownerList oldest
	// first.
	owners    map[apikey.OwnerRef]*apikey.Owner
	ownerByID map[uuid.UUID]*apikey.Owner
	ownerList []*apikey.Owner
}

func (s *State) setOwners(os []apikey.Owner) {
	s.owners = make(map[apikey.OwnerRef]*apikey.Owner, len(os))
	s.ownerByID = make(map[uuid.UUID]*apikey.Owner, len(os))
	s.ownerList = make([]*apikey.Owner, 0, len(os))
	for i := range os {
		o := &os[i]
		s.owners[o.Ref()] = o
		s.ownerByID[o.ID] = o
		s.ownerList = append(s.ownerList, o)
	}
}

// OwnerOf finds the owner with budgets of key k (nil when its owner has
// none): one map lookup, none at all while no owner has budgets.
func (s *State) OwnerOf(k *apikey.Key) *apikey.Owner {
	if len(s.owners) == 0 {
		return nil
	}
	return s.owners[k.OwnerRef()]
}

// Owner finds an owner by id.
func (s *State) Owner(id uuid.UUID) (*apikey.Owner, bool) {
	o, ok := s.ownerByID[id]
	return o, ok
}

// OwnerNamed finds an owner by keyspace and name.
func (s *State) OwnerNamed(ref apikey.OwnerRef) (*apikey.Owner, bool) {
	o, ok := s.owners[ref]
	return o, ok
}

// Owners lists the owners with budgets, oldest first.
func (s *State) Owners() []*apikey.Owner { return s.ownerList }

// Entry is a credential as the registry holds it, with its last use.
type Entry struct {
	apikey.Credential
	used    atomic.Int64 // unix nanoseconds of the last use seen here
	flushed atomic.Int64 // the last use written
}

// Keyspace finds a keyspace by id or name.
func (s *State) Keyspace(ref string) (*apikey.Keyspace, bool) {
	if ks, ok := s.byName[ref]; ok {
		return ks, true
	}
	if id, err := uuid.Parse(ref); err == nil {
		ks, ok := s.byID[id]
		return ks, ok
	}
	return nil, false
}

// KeyspaceByID finds a keyspace by id.
func (s *State) KeyspaceByID(id uuid.UUID) (*apikey.Keyspace, bool) {
	ks, ok := s.byID[id]
	return ks, ok
}

// Keyspaces lists the keyspaces, oldest first.
func (s *State) Keyspaces() []*apikey.Keyspace { return s.list }

// Space is the format's space number of keyspace id (-1 when unknown).
func (s *State) Space(id uuid.UUID) int { return slices.Index(s.Spaces, id) }

// Credential finds the credential whose secret has SHA-256 digest: one map
// lookup. Revoked and expired ones are found too (Usable tells).
func (s *State) Credential(digest *[32]byte) (*Entry, bool) {
	e, ok := s.creds[*digest]
	return e, ok
}

// Bootstrap lists the credentials of the environment.
func (s *State) Bootstrap() []apikey.Credential { return s.bootstrap }

// StoredCredentials lists the stored credentials, oldest first.
func (s *State) StoredCredentials() []*Entry { return s.stored }

// Used marks e used at now (cheap: one atomic store when the mark moves
// by more than a second; written by Run in batches).
func (e *Entry) Used(now time.Time) {
	if e.ID == uuid.Nil {
		return // bootstrap: nothing stored to touch
	}
	n := now.UnixNano()
	if n-e.used.Load() > int64(time.Second) {
		e.used.Store(n)
	}
}

// LastUsed is the latest of the stored last use and one seen here.
func (e *Entry) LastUsed() *time.Time {
	n := e.used.Load()
	if n == 0 || (e.LastUsedAt != nil && e.LastUsedAt.UnixNano() >= n) {
		return e.LastUsedAt
	}
	t := time.Unix(0, n).UTC()
	return &t
}
