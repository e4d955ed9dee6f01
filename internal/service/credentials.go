package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/perm"
	"github.com/keyservice/keyservice/internal/tenancy"
)

// CredentialPrefix starts every stored credential's secret, so a leaked
// one is recognisable (and never confused with an API key).
const CredentialPrefix = "kscred_"

// credentialSecretLen is the random part of a secret: 43 base62
// characters, 256 bits.
const credentialSecretLen = 43

func newCredentialSecret() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, len(CredentialPrefix)+credentialSecretLen)
	out = append(out, CredentialPrefix...)
	var buf [64]byte
	for len(out) < cap(out) {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go 1.24+)
		for _, b := range buf {
			if b < 248 && len(out) < cap(out) { // 248 = 4*62: no bias
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

// validCredentialName: 1 to 64 of a-z A-Z 0-9 . _ - (the alphabet of
// bootstrap token names).
func validCredentialName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// The escalation rules: a credential creates only credentials with a
// subset of its permissions and keyspaces, expiring no later than itself,
// and revokes only those it could have created.
func (s *Service) CreateCredential(ctx context.Context, req *keyservicev1.CreateCredentialRequest) (*keyservicev1.CreateCredentialResponse, error) {
	me := apikey.CredentialOf(ctx)
	if me == nil {
		return nil, deny("a credential is needed to create credentials")
	}
	if !validCredentialName(req.GetName()) {
		return nil, invalid("name", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_' and '-'")
	}
	st := s.tenancy.Current()
	for _, c := range st.Bootstrap() {
		if c.Name == req.GetName() {
			return nil, invalid("name", "is the name of a bootstrap token of the environment")
		}
	}
	if _, ok := s.callerLimits[req.GetName()]; ok {
		// Budgets are kept by name: the new credential would take the
		// configured override of that caller.
		return nil, invalid("name", "is the name of a caller in KEYSERVICE_CALLER_LIMITS")
	}
	ps, err := perm.Parse(req.GetPermissions())
	if err != nil {
		return nil, invalid("permissions", "%v", err)
	}
	if ps == 0 {
		return nil, invalid("permissions", "name at least one of %v", perm.Names())
	}
	if !ps.Within(me.Permissions) {
		return nil, deny("permissions: a credential may only grant permissions it holds (%v is not within %v)", ps, me.Permissions)
	}
	nc := apikey.Credential{Name: req.GetName(), Permissions: ps, AllKeyspaces: req.GetAllKeyspaces()}
	switch {
	case nc.AllKeyspaces && len(req.GetKeyspaces()) > 0:
		return nil, invalid("keyspaces", "give either all_keyspaces or keyspaces, not both")
	case nc.AllKeyspaces && !me.AllKeyspaces:
		return nil, deny("all_keyspaces: a credential bound to keyspaces may only grant those")
	case !nc.AllKeyspaces && len(req.GetKeyspaces()) == 0:
		return nil, invalid("keyspaces", "name the keyspaces the credential may act on, or set all_keyspaces")
	}
	for _, ref := range req.GetKeyspaces() {
		if ref == "" {
			// keyspaceFor reads "" as the default keyspace: here it is a
			// mistake, not a choice.
			return nil, invalid("keyspaces", "an empty entry: name each keyspace by its name or id")
		}
		ks, err := s.keyspaceFor(ctx, "keyspaces", ref)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(nc.Keyspaces, ks.ID) {
			nc.Keyspaces = append(nc.Keyspaces, ks.ID)
		}
	}
	if nc.ExpiresAt, err = checkExpiry(req.GetExpiresAt(), s.now(), true); err != nil {
		return nil, err
	}
	if nc.ExpiresAt != nil {
		t := nc.ExpiresAt.Truncate(time.Microsecond) // as it is stored
		nc.ExpiresAt = &t
	}
	if me.ExpiresAt != nil && (nc.ExpiresAt == nil || nc.ExpiresAt.After(*me.ExpiresAt)) {
		return nil, deny("expires_at: a credential may not outlive the one creating it (it expires at %s)", me.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if nc.Rate, err = checkRateLimit(req.GetRateLimit()); err != nil {
		return nil, err
	}
	if nc.Rate == nil && me.Rate != nil {
		// Without a budget of its own the new credential would get the
		// configured one, which may be more than its creator's: it takes
		// its creator's.
		r := *me.Rate
		nc.Rate = &r
	}
	if err := s.withinBudget(me, nc.Rate); err != nil {
		return nil, err
	}
	secret := newCredentialSecret()
	nc.Hash = sha256.Sum256([]byte(secret))
	out, err := s.tenants.CreateCredential(audited(ctx), nc)
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return &keyservicev1.CreateCredentialResponse{Secret: secret, Credential: credentialToProto(&out, nil)}, nil
}

// mayManage explains why me may not manage c (revoke it, or see it
// listed), or returns nil: c must be within me's permissions and
// keyspaces.
func mayManage(me *apikey.Credential, c *apikey.Credential) error {
	if me == nil || !c.Permissions.Within(me.Permissions) {
		return &notFound{what: "credential"}
	}
	if me.ExpiresAt != nil && (c.ExpiresAt == nil || c.ExpiresAt.After(*me.ExpiresAt)) {
		return &notFound{what: "credential"}
	}
	if me.AllKeyspaces {
		return nil
	}
	if c.AllKeyspaces {
		return &notFound{what: "credential"}
	}
	for _, id := range c.Keyspaces {
		if !me.InKeyspace(id) {
			return &notFound{what: "credential"}
		}
	}
	return nil
}

func (s *Service) ListCredentials(ctx context.Context, req *keyservicev1.ListCredentialsRequest) (*keyservicev1.ListCredentialsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	page := apikey.Page{List: apikey.ListCredentials}
	after, err := s.pageToken(page, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	me := apikey.CredentialOf(ctx)
	out := &keyservicev1.ListCredentialsResponse{}
	var last *tenancy.Entry
	for _, e := range s.tenancy.Current().StoredCredentials() {
		if mayManage(me, &e.Credential) != nil || !after.Before(e.CreatedAt, e.ID) {
			continue
		}
		if len(out.Credentials) == size {
			out.NextPageToken = s.cursors.Encode(page, apikey.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
			break
		}
		out.Credentials = append(out.Credentials, credentialToProto(&e.Credential, e.LastUsed()))
		last = e
	}
	return out, nil
}

func (s *Service) RevokeCredential(ctx context.Context, req *keyservicev1.RevokeCredentialRequest) (*keyservicev1.RevokeCredentialResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	me := apikey.CredentialOf(ctx)
	out, err := s.tenants.RevokeCredential(audited(ctx), id, func(c apikey.Credential) error { return mayManage(me, &c) })
	if err != nil {
		return nil, notFoundAs(err, "credential")
	}
	s.reload(ctx)
	return &keyservicev1.RevokeCredentialResponse{Credential: credentialToProto(&out, nil)}, nil
}

// withinBudget refuses a caller budget above the creating credential's
// own (its rate_limit, else its KEYSERVICE_CALLER_LIMITS entry, else the
// configured caller budget): a credential
// cannot mint a faster caller than itself.
func (s *Service) withinBudget(me *apikey.Credential, r *apikey.RateLimit) error {
	mine := s.callerBudget
	if b, ok := s.callerLimits[me.CallerName()]; ok {
		mine = b
	}
	if me.Rate != nil {
		mine = caller.Budget{Rate: me.Rate.PerSecond(), Burst: me.Rate.Burst}
	}
	if mine.Burst == 0 {
		return nil // no budget known: nothing to compare with
	}
	if r == nil {
		// The new credential would get the configured budget.
		if s.callerBudget.Rate > mine.Rate || s.callerBudget.Burst > mine.Burst {
			return deny("rate_limit: required: this credential's own caller budget (%g per second, burst %d) is below the configured one", mine.Rate, mine.Burst)
		}
		return nil
	}
	if r.PerSecond() > mine.Rate || r.Burst > mine.Burst {
		return deny("rate_limit: a credential may not grant a caller budget above its own (%g per second, burst %d)", mine.Rate, mine.Burst)
	}
	return nil
}

// reload reads the registry again after a write, so that the write is
// visible on this replica when the call returns. The write has committed:
// a failure here is not the call's (the write's NOTIFY and the periodic
// sync read it again), and a cancelled call does not stop it.
func (s *Service) reload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.tenancy.Load(ctx)
}

func credentialToProto(c *apikey.Credential, lastUsed *time.Time) *keyservicev1.Credential {
	out := &keyservicev1.Credential{
		Id: c.ID.String(), Name: c.Name, Permissions: c.Permissions.Names(), AllKeyspaces: c.AllKeyspaces,
		CreatedAt: timestamppb.New(c.CreatedAt), CreatedBy: c.CreatedBy,
	}
	for _, id := range c.Keyspaces {
		out.KeyspaceIds = append(out.KeyspaceIds, id.String())
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = timestamppb.New(*c.ExpiresAt)
	}
	if c.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*c.RevokedAt)
	}
	if lastUsed == nil {
		lastUsed = c.LastUsedAt
	}
	if lastUsed != nil {
		out.LastUsedAt = timestamppb.New(*lastUsed)
	}
	if r := c.Rate; r != nil {
		out.RateLimit = &keyservicev1.RateLimit{Limit: int64(r.Limit), Period: durationpb.New(r.Period), Burst: int64(r.Burst)}
	}
	return out
}
