package service

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

func (s *Service) CreateKey(ctx context.Context, req *keyservicev1.CreateKeyRequest) (*keyservicev1.CreateKeyResponse, error) {
	nk, err := s.newKeyFrom(req)
	if err != nil {
		return nil, err
	}
	ks, err := s.keyspaceFor(ctx, "keyspace", req.GetKeyspace())
	if err != nil {
		return nil, err
	}
	withDefaults(&nk, req, ks, s.now())
	g, err := s.generate(ks, req.GetFormat())
	if err != nil {
		return nil, err
	}
	nk.Hash, nk.Hint, nk.KeyspaceID = g.Hash, g.Hint, ks.ID
	answer := func(recs ...apikey.Key) proto.Message {
		k := keyToProto(&recs[0])
		if nk.Credits != nil {
			k.Credits = settingToProto(nk.Credits, recs[0].CreatedAt)
		}
		return &keyservicev1.CreateKeyResponse{Secret: g.Secret, Key: k}
	}
	if ctx, err = s.withRequest(ctx, "CreateKey", req, answer); err != nil {
		return nil, err
	}
	k, err := s.keys.CreateKey(audited(ctx), nk)
	if err != nil {
		return replay(s, ctx, "CreateKey", req, err, &keyservicev1.CreateKeyResponse{})
	}
	return answer(k).(*keyservicev1.CreateKeyResponse), nil
}

// withDefaults fills what the request left unset from ks's defaults:
// rate limit, expiry (now + default_expiry) and scopes.
func withDefaults(nk *apikey.NewKey, req *keyservicev1.CreateKeyRequest, ks *apikey.Keyspace, now time.Time) {
	if req.GetRateLimit() == nil && ks.DefaultRate != nil {
		r := *ks.DefaultRate
		nk.RateLimit = &r
	}
	if req.GetExpiresAt() == nil && ks.DefaultExpiry > 0 {
		t := now.Add(ks.DefaultExpiry)
		nk.ExpiresAt = &t
	}
	if len(req.GetScopes()) == 0 && len(ks.DefaultScopes) > 0 {
		nk.Scopes = ks.DefaultScopes
	}
}

// generate makes a new secret of keyspace ks in format (unspecified: the
// keyspace's default, else the configured one).
func (s *Service) generate(ks *apikey.Keyspace, format keyservicev1.Format) (keys.Generated, error) {
	if format == keyservicev1.Format_FORMAT_UNSPECIFIED {
		format = formatOf(ks.DefaultFormat, s.defaultFormat)
	}
	st := s.tenancy.Current()
	space := st.Space(ks.ID)
	if space < 0 {
		return keys.Generated{}, fmt.Errorf("keyspace %s has no prefix in this replica's format", ks.ID)
	}
	switch format {
	case keyservicev1.Format_FORMAT_CHECKSUM:
		return st.Format.GenerateIn(space, false)
	case keyservicev1.Format_FORMAT_SIGNED:
		if !st.Format.CanSign() {
			return keys.Generated{}, invalid("format", "signed keys need signing keys on the server (KEYSERVICE_SIGNING_KEYS)")
		}
		return st.Format.GenerateIn(space, true)
	}
	return keys.Generated{}, invalid("format", "must be FORMAT_CHECKSUM or FORMAT_SIGNED, got %d", format)
}

// formatOf is the API format named by a keyspace's default_format.
func formatOf(name string, dflt keyservicev1.Format) keyservicev1.Format {
	switch name {
	case "checksum":
		return keyservicev1.Format_FORMAT_CHECKSUM
	case "signed":
		return keyservicev1.Format_FORMAT_SIGNED
	}
	return dflt
}

func (s *Service) newKeyFrom(req *keyservicev1.CreateKeyRequest) (apikey.NewKey, error) {
	return checkNewKey(req, s.now(), true)
}

// CheckImported checks the fields of a key being imported (keyservice
// import) with the rules of CreateKey, except that it may have expired.
// A problem is an error naming the field.
func CheckImported(req *keyservicev1.CreateKeyRequest) (apikey.NewKey, error) {
	return checkNewKey(req, time.Time{}, false)
}

func checkNewKey(req *keyservicev1.CreateKeyRequest, now time.Time, future bool) (apikey.NewKey, error) {
	nk := apikey.NewKey{Name: req.GetName(), Owner: req.GetOwner(), Scopes: req.GetScopes(), Metadata: req.GetMetadata()}
	if err := checkText("name", nk.Name, maxNameLen); err != nil {
		return nk, err
	}
	if err := checkText("owner", nk.Owner, maxOwnerLen); err != nil {
		return nk, err
	}
	if err := checkScopes("scopes", nk.Scopes); err != nil {
		return nk, err
	}
	if err := checkMetadata("metadata", nk.Metadata); err != nil {
		return nk, err
	}
	var err error
	if nk.RateLimit, err = checkRateLimit(req.GetRateLimit()); err != nil {
		return nk, err
	}
	if nk.ExpiresAt, err = checkExpiry(req.GetExpiresAt(), now, future); err != nil {
		return nk, err
	}
	if nk.AllowedCIDRs, err = checkCIDRs("allowed_cidrs", req.GetAllowedCidrs()); err != nil {
		return nk, err
	}
	if nk.Credits, err = checkCredits("credits", req.GetCredits()); err != nil {
		return nk, err
	}
	return nk, nil
}

func checkScopes(field string, scopes []string) error {
	if len(scopes) > maxScopes {
		return invalid(field, "at most %d scopes, got %d", maxScopes, len(scopes))
	}
	for i, sc := range scopes {
		if !validScope(sc) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "a scope is 1 to %d of the characters a-z A-Z 0-9 : . _ - / * (no commas or spaces: scopes travel comma-separated in X-Key-Scopes)", maxScopeLen)
		}
	}
	return nil
}

func checkMetadata(field string, m map[string]string) error {
	if len(m) > maxMetadata {
		return invalid(field, "at most %d entries, got %d", maxMetadata, len(m))
	}
	for k, v := range m {
		if k == "" || utf8.RuneCountInString(k) > maxMetaKeyLen {
			return invalid(field, "keys must be 1 to %d characters", maxMetaKeyLen)
		}
		if utf8.RuneCountInString(v) > maxMetaValueLen {
			return invalid(field, "value of %q is over %d characters", k, maxMetaValueLen)
		}
		if checkChars(field, k) != nil || checkChars(field, v) != nil {
			return invalid(field, "keys and values must contain %s", printableRule)
		}
	}
	return nil
}

// checkRateLimit turns a requested limit into a stored one (nil: none).
func checkRateLimit(rl *keyservicev1.RateLimit) (*apikey.RateLimit, error) {
	if rl == nil {
		return nil, nil
	}
	if err := rl.GetPeriod().CheckValid(); rl.GetPeriod() == nil || err != nil {
		return nil, invalid("rate_limit", "period is required, for example \"60s\"")
	}
	lim := apikey.RateLimit{Limit: int(min(rl.GetLimit(), 1<<31-1)), Period: rl.GetPeriod().AsDuration(), Burst: int(min(rl.GetBurst(), 1<<31-1))}
	if rl.GetBurst() == 0 {
		lim.Burst = lim.Limit
	}
	if rl.GetLimit() < 0 || rl.GetBurst() < 0 {
		return nil, invalid("rate_limit", "limit and burst must not be negative")
	}
	if err := lim.Valid(); err != nil {
		return nil, invalid("rate_limit", "%v", err)
	}
	return &apikey.RateLimit{Limit: lim.Limit, Period: lim.Period, Burst: lim.Burst}, nil
}

// checkExpiry turns a requested expiry into a stored one (nil: never);
// with future, it must be after now.
func checkExpiry(ts *timestamppb.Timestamp, now time.Time, future bool) (*time.Time, error) {
	if ts == nil {
		return nil, nil
	}
	if err := ts.CheckValid(); err != nil {
		return nil, invalid("expires_at", "is not a valid time")
	}
	exp := ts.AsTime()
	if future && !exp.After(now) {
		return nil, invalid("expires_at", "must be in the future")
	}
	return &exp, nil
}

func (s *Service) GetKey(ctx context.Context, req *keyservicev1.GetKeyRequest) (*keyservicev1.GetKeyResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	k, err := s.keyIn(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.GetKeyResponse{Key: keyToProto(&k)}
	if err := s.withCredits(ctx, []*keyservicev1.Key{out.Key}, []apikey.Key{k}); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) ListKeys(ctx context.Context, req *keyservicev1.ListKeysRequest) (*keyservicev1.ListKeysResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := checkOptionalText("owner", req.GetOwner(), maxOwnerLen); err != nil {
		return nil, err
	}
	scope, err := s.listScope(ctx, "keyspace", req.GetKeyspace())
	if err != nil {
		return nil, err
	}
	if err := checkOptionalText("query", req.GetQuery(), maxNameLen); err != nil {
		return nil, err
	}
	state := req.GetState()
	if _, ok := keyservicev1.KeyState_name[int32(state)]; !ok {
		return nil, invalid("state", "unknown value %d", state)
	}
	page := apikey.Page{List: apikey.ListKeys, Filters: []string{req.GetOwner(), req.GetKeyspace(), req.GetQuery(), state.String()}}
	if req.GetNewestFirst() { // (only then: oldest-first tokens of the release before stay good)
		page.Filters = append(page.Filters, "newest first")
	}
	after, err := s.pageToken(page, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ks, next, err := s.keys.ListKeys(ctx, apikey.ListParams{Owner: req.GetOwner(), Keyspaces: scope, After: after, Limit: size,
		Pattern: likePattern(req.GetQuery()), State: apikey.State(state), NewestFirst: req.GetNewestFirst()})
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.ListKeysResponse{Keys: make([]*keyservicev1.Key, 0, len(ks)), NextPageToken: s.cursors.Encode(page, next)}
	for i := range ks {
		out.Keys = append(out.Keys, keyToProto(&ks[i]))
	}
	if err := s.withCredits(ctx, out.Keys, ks); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) RevokeKey(ctx context.Context, req *keyservicev1.RevokeKeyRequest) (*keyservicev1.RevokeKeyResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.visibleKey(ctx, id); err != nil {
		return nil, err
	}
	answer := func(recs ...apikey.Key) proto.Message {
		return &keyservicev1.RevokeKeyResponse{Key: keyToProto(&recs[0])}
	}
	if ctx, err = s.withRequest(ctx, "RevokeKey", req, answer); err != nil {
		return nil, err
	}
	k, err := s.keys.RevokeKey(audited(ctx), id)
	if err != nil {
		return replay(s, ctx, "RevokeKey", req, err, &keyservicev1.RevokeKeyResponse{})
	}
	return answer(k).(*keyservicev1.RevokeKeyResponse), nil
}

// likePattern is an ILIKE pattern that finds text anywhere, its own % _
// and \ taken literally; "" for no text.
func likePattern(text string) string {
	if text == "" {
		return ""
	}
	return "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(text) + "%"
}
