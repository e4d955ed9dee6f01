package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/status"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/tenancy"
	"github.com/keyservice/keyservice/internal/validate"
)

// The fakes below stand in for the interfaces a Service takes (Config:
// Keys, Validator, KeyLimits). The store, the validation path and the
// budgets are tested for real in their own packages and through full
// servers in internal/server; here only the handlers around them are under
// test, so the fakes record what reached them and answer what a test says.

// fakeStore is a validate.KeyStore in memory. Every method records its
// name in calls; err, when set, is every write's answer. Writes made with
// a request (apikey.RequestOf) follow the store's idempotency contract:
// the first records the sealed answer, a retry with the same method and
// body gets *apikey.Replayed, another body ErrRequestReused.
type fakeStore struct {
	mu       sync.Mutex
	calls    []string
	err      error
	key      apikey.Key          // what reads and writes return
	update   apikey.Update       // the last UpdateKey's
	list     apikey.ListParams   // the last ListKeys'
	audit    apikey.AuditQuery   // the last ListAuditEvents'
	next     apikey.Cursor       // the cursor lists return
	requests map[uuid.UUID]*made // by request id
	// anyRequest replays a recorded answer whatever the retry's method
	// and body (a store that failed to compare them).
	anyRequest bool
	audits     []apikey.Audit           // of each write
	known      map[keys.Hash]apikey.Key // what KeyByHash finds
	leaked     []apikey.LeakReport      // ReportLeak's
	failing    map[uuid.UUID]error      // ReportLeak's answer for these keys
	events     []apikey.AuditEvent      // what ListAuditEvents returns
}

type made struct {
	method string
	hash   []byte
	answer []byte
}

var _ validate.KeyStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		key: apikey.Key{ID: uuid.MustParse("0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"), Name: "n", Owner: "o",
			CreatedAt: time.Unix(1_790_000_000, 0).UTC(), Enabled: true},
		requests: map[uuid.UUID]*made{},
	}
}

func (f *fakeStore) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

// Calls is what reached the store, in order.
func (f *fakeStore) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// write runs a write under the idempotency contract.
func (f *fakeStore) write(ctx context.Context, name string, recs ...apikey.Key) error {
	f.record(name)
	f.mu.Lock()
	f.audits = append(f.audits, apikey.AuditOf(ctx))
	f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	r := apikey.RequestOf(ctx)
	if r == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.requests[r.ID]; ok {
		if !f.anyRequest && (m.method != r.Method || !bytes.Equal(m.hash, r.BodyHash)) {
			return apikey.ErrRequestReused
		}
		return &apikey.Replayed{Answer: m.answer}
	}
	answer, err := r.Answer(recs...)
	if err != nil {
		return err
	}
	f.requests[r.ID] = &made{method: r.Method, hash: r.BodyHash, answer: answer}
	return nil
}

func (f *fakeStore) CreateKey(ctx context.Context, nk apikey.NewKey) (apikey.Key, error) {
	k := f.key
	k.Name, k.Owner, k.Scopes, k.Metadata, k.Hint = nk.Name, nk.Owner, nk.Scopes, nk.Metadata, nk.Hint
	k.ExpiresAt, k.RateLimit, k.AllowedCIDRs = nk.ExpiresAt, nk.RateLimit, nk.AllowedCIDRs
	k.ID = uuid.New() // a retry that writes again would show a new id
	return k, f.write(ctx, "CreateKey", k)
}

func (f *fakeStore) GetKey(_ context.Context, id uuid.UUID) (apikey.Key, error) {
	f.record("GetKey")
	if id != f.key.ID {
		return apikey.Key{}, apikey.ErrNotFound
	}
	return f.key, nil
}

func (f *fakeStore) ListKeys(_ context.Context, p apikey.ListParams) ([]apikey.Key, apikey.Cursor, error) {
	f.record("ListKeys")
	f.list = p
	return []apikey.Key{f.key}, f.next, nil
}

func (f *fakeStore) RevokeKey(ctx context.Context, _ uuid.UUID) (apikey.Key, error) {
	k := f.key
	now := time.Unix(1_790_000_100, 0).UTC()
	k.RevokedAt = &now
	return k, f.write(ctx, "RevokeKey", k)
}

func (f *fakeStore) UpdateKey(ctx context.Context, _ uuid.UUID, u apikey.Update) (apikey.Key, bool, error) {
	f.update = u
	return f.key, true, f.write(ctx, "UpdateKey", f.key)
}

func (f *fakeStore) RotateKey(ctx context.Context, _ uuid.UUID, r apikey.Rotation) (apikey.Key, apikey.Key, error) {
	nk := f.key
	nk.ID, nk.Hint, nk.RotatedFrom = uuid.New(), r.NewKey.Hint, f.key.ID
	old := f.key
	old.RotatedTo = nk.ID
	return nk, old, f.write(ctx, "RotateKey", nk, old)
}

func (f *fakeStore) ListAuditEvents(_ context.Context, q apikey.AuditQuery) ([]apikey.AuditEvent, apikey.Cursor, error) {
	f.record("ListAuditEvents")
	f.audit = q
	return f.events, f.next, nil
}

func (f *fakeStore) KeyByHash(_ context.Context, h keys.Hash) (apikey.Key, error) {
	f.record("KeyByHash")
	if k, ok := f.known[h]; ok {
		return k, nil
	}
	return apikey.Key{}, apikey.ErrNotFound
}

func (f *fakeStore) ReportLeak(ctx context.Context, r apikey.LeakReport, revoke bool) (apikey.Key, string, error) {
	f.leaked = append(f.leaked, r)
	if err := f.failing[r.KeyID]; err != nil {
		return apikey.Key{}, "", err
	}
	action := apikey.LeakRevoked
	if !revoke {
		action = apikey.LeakFlagged
	}
	return f.key, action, f.write(ctx, "ReportLeak", f.key)
}

// fakeValidator answers every key with res (the validation path's verdict
// on the key's state), or err, and counts its calls.
type fakeValidator struct {
	res   validate.Result
	err   error
	calls int
}

func (v *fakeValidator) ValidateIn(context.Context, string, validate.Scope) (validate.Result, error) {
	v.calls++
	return v.res, v.err
}

// fakeBudgets is a ratelimit.KeyBudgets with remaining calls per budget
// (a missing one starts at the limit's burst), recording what was taken.
type fakeBudgets struct {
	remaining map[string]int
	takes     []take
}

type take struct {
	budget string
	limit  apikey.RateLimit
	cost   int
}

var _ ratelimit.KeyBudgets = (*fakeBudgets)(nil)

func (b *fakeBudgets) Take(_ context.Context, key string, l apikey.RateLimit, cost int) (apikey.Budget, error) {
	b.takes = append(b.takes, take{key, l, cost})
	if b.remaining == nil {
		b.remaining = map[string]int{}
	}
	left, ok := b.remaining[key]
	if !ok {
		left = l.Burst
	}
	if cost > left || (cost == 0 && left == 0) {
		return apikey.Budget{Allowed: false, Limit: l.Limit, Remaining: left, Reset: l.Period}, nil
	}
	b.remaining[key] = left - cost
	return apikey.Budget{Allowed: true, Limit: l.Limit, Remaining: left - cost, Reset: l.Period}, nil
}

// testFormat makes checksum keys with prefix ks.
func testFormat(t *testing.T) keys.Format {
	t.Helper()
	f, err := keys.NewFormat("ks")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testTenancy is a registry of the default keyspace (format ks) and no
// credentials, never loaded.
func testTenancy(t *testing.T) *tenancy.Registry {
	t.Helper()
	r, err := tenancy.New(tenancy.Config{Format: testFormat(t)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newTestService is a Service over fakes at a fixed time.
func newTestService(t *testing.T, st *fakeStore, v *fakeValidator, b *fakeBudgets) *Service {
	t.Helper()
	cfg := Config{Keys: st, Tenancy: testTenancy(t), PageTokenKey: []byte("page tokens"),
		Now:          func() time.Time { return time.Unix(1_790_000_000, 0).UTC() },
		DefaultLimit: apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 10}}
	if v != nil {
		cfg.Validator = v
	}
	if b != nil {
		cfg.KeyLimits = b
	}
	return New(cfg)
}

// statusOf is err as a client sees it (through ToStatus).
func statusOf(err error) *status.Status {
	return status.Convert(ToStatus(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), err))
}

// stateOf is the validation path's answer for k's state.
func stateOf(k *apikey.Key, c outcome.Code) validate.Result {
	return validate.Result{Code: c, Key: k, Path: validate.PathPositiveCache}
}
