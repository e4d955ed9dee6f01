package server

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/store"
	"github.com/keyservice/keyservice/internal/validate"
)

// Limits on request fields.
const (
	maxNameLen      = 200
	maxOwnerLen     = 200
	maxScopes       = 64
	maxScopeLen     = 128
	maxMetadata     = 32
	maxMetaKeyLen   = 64
	maxMetaValueLen = 1024
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Keys is what the handlers need from the store.
type Keys interface {
	CreateKey(ctx context.Context, k store.NewKey) (store.Key, error)
	GetKey(ctx context.Context, id uuid.UUID) (store.Key, error)
	ListKeys(ctx context.Context, p store.ListParams) ([]store.Key, store.Cursor, error)
	RevokeKey(ctx context.Context, id uuid.UUID) (store.Key, error)
}

// Validator is what Validate needs; Apply makes this replica's own writes
// visible to its validation path before the write call returns.
type Validator interface {
	Validate(ctx context.Context, key string) (validate.Result, error)
	Apply(e store.Event, source string)
}

var (
	_ Keys      = (*store.Store)(nil)
	_ Validator = (*validate.Validator)(nil)
)

// keyService implements keyservicev1.KeyServiceServer. Errors it returns are
// turned into statuses by the mapErrors interceptor.
type keyService struct {
	keyservicev1.UnimplementedKeyServiceServer
	keys         Keys
	validator    Validator
	format       keys.Format
	now          func() time.Time
	keyLimits    ratelimit.KeyStore
	defaultLimit ratelimit.Limit
	ceiling      bool // bench baseline: answer at once (WithCeilingValidation)
	cursors      store.CursorCodec
	// views caches the API form of records served from memory, keyed by the
	// cached record's address (stable while the cache entry lives; the key
	// here keeps it from being reused): a hot key is converted once, not on
	// every answer. Shared messages are only ever read (marshalled).
	views *otter.Cache[*store.Key, *keyservicev1.Key]
}

// view returns the API form of the record of res.
func (s *keyService) view(res validate.Result) *keyservicev1.Key {
	if s.views == nil || (res.Path != validate.PathPositiveCache && res.Path != validate.PathNegativeCache) {
		return keyToProto(res.Key)
	}
	if v, ok := s.views.GetIfPresent(res.Key); ok {
		return v
	}
	v := keyToProto(res.Key)
	s.views.Set(res.Key, v)
	return v
}

const maxCost = 1_000_000

// ceilingAnswer is what the bench's ceiling handler sends: an answer of the
// same shape and size as a real VALID one, so the ceiling measures the
// stack, not a smaller response.
var ceilingAnswer = &keyservicev1.ValidateResponse{
	Valid: true,
	Code:  keyservicev1.Code_CODE_VALID,
	Key: &keyservicev1.Key{
		Id: "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a", Hint: "ks_...Ab12", Name: "bench-1", Owner: "owner-1",
		Scopes: []string{}, Metadata: map[string]string{}, CreatedAt: timestamppb.New(time.Unix(1_790_000_000, 0)),
	},
	RateLimit: &keyservicev1.RateLimitStatus{Limit: 1_000_000_000, Remaining: 999_999_999, Reset_: durationpb.New(0)},
}

func (s *keyService) Validate(ctx context.Context, req *keyservicev1.ValidateRequest) (*keyservicev1.ValidateResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("key", "is required")
	}
	cost := 1
	if req.Cost != nil {
		if c := req.GetCost(); c < 0 || c > maxCost {
			return nil, invalid("cost", "must be between 0 and %d, got %d", maxCost, c)
		}
		cost = int(req.GetCost())
	}
	if ip := req.GetClientIp(); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, invalid("client_ip", "must be an IPv4 or IPv6 address")
		}
	}
	if s.ceiling {
		return ceilingAnswer, nil
	}
	res, err := s.validator.Validate(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.ValidateResponse{Valid: res.Code == validate.Valid, Code: codeToProto(res.Code)}
	if res.Key != nil {
		out.Key = s.view(res)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		defer func() {
			span.SetAttributes(attribute.String("keyservice.validate.path", res.Path.String()),
				attribute.String("keyservice.validate.code", out.GetCode().String()))
		}()
	}
	if res.Code == validate.Valid && s.keyLimits != nil {
		lim := s.limitOf(res.Key)
		d, err := s.keyLimits.Take(ctx, res.Key.ID.String(), lim, cost)
		if err != nil {
			return nil, err
		}
		out.RateLimit = &keyservicev1.RateLimitStatus{Limit: int64(d.Limit), Remaining: int64(d.Remaining), Reset_: durationpb.New(d.Reset)}
		if !d.Allowed {
			out.Valid, out.Code = false, keyservicev1.Code_CODE_RATE_LIMITED
		}
	}
	return out, nil
}

// limitOf is the key's own limit, or the configured default.
func (s *keyService) limitOf(k *store.Key) ratelimit.Limit {
	if rl := k.RateLimit; rl != nil {
		return ratelimit.Limit{Limit: rl.Limit, Period: rl.Period, Burst: rl.Burst}
	}
	return s.defaultLimit
}

func (s *keyService) CreateKey(ctx context.Context, req *keyservicev1.CreateKeyRequest) (*keyservicev1.CreateKeyResponse, error) {
	nk, err := s.newKeyFrom(req)
	if err != nil {
		return nil, err
	}
	g, err := s.format.Generate()
	if err != nil {
		return nil, err
	}
	nk.Hash, nk.Hint = g.Hash, g.Hint
	k, err := s.keys.CreateKey(ctx, nk)
	if err != nil {
		return nil, err
	}
	s.validator.Apply(store.Event{Kind: store.EventCreated, Hash: k.Hash, Key: &k}, "local")
	return &keyservicev1.CreateKeyResponse{Secret: g.Secret, Key: keyToProto(&k)}, nil
}

func (s *keyService) newKeyFrom(req *keyservicev1.CreateKeyRequest) (store.NewKey, error) {
	nk := store.NewKey{Name: req.GetName(), Owner: req.GetOwner(), Scopes: req.GetScopes(), Metadata: req.GetMetadata()}
	if err := checkText("name", nk.Name, maxNameLen); err != nil {
		return nk, err
	}
	if err := checkText("owner", nk.Owner, maxOwnerLen); err != nil {
		return nk, err
	}
	if len(nk.Scopes) > maxScopes {
		return nk, invalid("scopes", "at most %d scopes, got %d", maxScopes, len(nk.Scopes))
	}
	for i, sc := range nk.Scopes {
		if !validScope(sc) {
			return nk, invalid(fmt.Sprintf("scopes[%d]", i), "a scope is 1 to %d of the characters a-z A-Z 0-9 : . _ - / * (no commas or spaces: scopes travel comma-separated in X-Key-Scopes)", maxScopeLen)
		}
	}
	if len(nk.Metadata) > maxMetadata {
		return nk, invalid("metadata", "at most %d entries, got %d", maxMetadata, len(nk.Metadata))
	}
	for k, v := range nk.Metadata {
		if k == "" || utf8.RuneCountInString(k) > maxMetaKeyLen {
			return nk, invalid("metadata", "keys must be 1 to %d characters", maxMetaKeyLen)
		}
		if utf8.RuneCountInString(v) > maxMetaValueLen {
			return nk, invalid("metadata", "value of %q is over %d characters", k, maxMetaValueLen)
		}
		if strings.IndexFunc(k+v, unicode.IsControl) >= 0 {
			return nk, invalid("metadata", "keys and values must not contain control characters")
		}
	}
	if rl := req.GetRateLimit(); rl != nil {
		if err := rl.GetPeriod().CheckValid(); rl.GetPeriod() == nil || err != nil {
			return nk, invalid("rate_limit", "period is required, for example \"60s\"")
		}
		lim := ratelimit.Limit{Limit: int(min(rl.GetLimit(), 1<<31-1)), Period: rl.GetPeriod().AsDuration(), Burst: int(min(rl.GetBurst(), 1<<31-1))}
		if rl.GetBurst() == 0 {
			lim.Burst = lim.Limit
		}
		if rl.GetLimit() < 0 || rl.GetBurst() < 0 {
			return nk, invalid("rate_limit", "limit and burst must not be negative")
		}
		if err := lim.Valid(); err != nil {
			return nk, invalid("rate_limit", "%v", err)
		}
		nk.RateLimit = &store.RateLimit{Limit: lim.Limit, Period: lim.Period, Burst: lim.Burst}
	}
	if ts := req.GetExpiresAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nk, invalid("expires_at", "is not a valid time")
		}
		exp := ts.AsTime()
		if !exp.After(s.now()) {
			return nk, invalid("expires_at", "must be in the future")
		}
		nk.ExpiresAt = &exp
	}
	return nk, nil
}

// validScope reports whether sc is 1 to maxScopeLen characters of the
// scope alphabet: letters, digits and : . _ - / * (no comma, so the scopes
// joined with commas in X-Key-Scopes stay unambiguous; no space or control
// character, so they are safe in any header).
func validScope(sc string) bool {
	if sc == "" || len(sc) > maxScopeLen {
		return false
	}
	for i := 0; i < len(sc); i++ {
		switch c := sc[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':' || c == '.' || c == '_' || c == '-' || c == '/' || c == '*':
		default:
			return false
		}
	}
	return true
}

// checkText requires 1 to max printable characters.
func checkText(field, v string, max int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case strings.TrimSpace(v) == "":
		return invalid(field, "is required")
	case n > max:
		return invalid(field, "must be at most %d characters, got %d", max, n)
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return invalid(field, "must contain only printable characters")
	}
	return nil
}

func (s *keyService) GetKey(ctx context.Context, req *keyservicev1.GetKeyRequest) (*keyservicev1.GetKeyResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	k, err := s.keys.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	return &keyservicev1.GetKeyResponse{Key: keyToProto(&k)}, nil
}

func (s *keyService) ListKeys(ctx context.Context, req *keyservicev1.ListKeysRequest) (*keyservicev1.ListKeysResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxPageSize:
		return nil, invalid("page_size", "must be between 0 and %d, got %d", maxPageSize, size)
	case size == 0:
		size = defaultPageSize
	}
	if utf8.RuneCountInString(req.GetOwner()) > maxOwnerLen {
		return nil, invalid("owner", "must be at most %d characters", maxOwnerLen)
	}
	after, err := s.cursors.Decode(req.GetPageToken())
	if err != nil {
		return nil, invalid("page_token", "is malformed; pass the next_page_token of a previous response")
	}
	ks, next, err := s.keys.ListKeys(ctx, store.ListParams{Owner: req.GetOwner(), After: after, Limit: size})
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.ListKeysResponse{Keys: make([]*keyservicev1.Key, 0, len(ks)), NextPageToken: s.cursors.Encode(next)}
	for i := range ks {
		out.Keys = append(out.Keys, keyToProto(&ks[i]))
	}
	return out, nil
}

func (s *keyService) RevokeKey(ctx context.Context, req *keyservicev1.RevokeKeyRequest) (*keyservicev1.RevokeKeyResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	k, err := s.keys.RevokeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	// Before answering: no Validate that starts after this returns may
	// answer VALID on this replica.
	s.validator.Apply(store.Event{Kind: store.EventRevoked, Hash: k.Hash, At: *k.RevokedAt, Key: &k}, "local")
	return &keyservicev1.RevokeKeyResponse{Key: keyToProto(&k)}, nil
}

func parseID(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, invalid("id", "is required")
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalid("id", "must be a UUID such as 0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a")
	}
	return id, nil
}

func keyToProto(k *store.Key) *keyservicev1.Key {
	out := &keyservicev1.Key{
		Id:        k.ID.String(),
		Hint:      k.Hint,
		Name:      k.Name,
		Owner:     k.Owner,
		Scopes:    k.Scopes,
		Metadata:  k.Metadata,
		CreatedAt: timestamppb.New(k.CreatedAt),
	}
	if k.ExpiresAt != nil {
		out.ExpiresAt = timestamppb.New(*k.ExpiresAt)
	}
	if k.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*k.RevokedAt)
	}
	if k.LastUsedAt != nil {
		out.LastUsedAt = timestamppb.New(*k.LastUsedAt)
	}
	if rl := k.RateLimit; rl != nil {
		out.RateLimit = &keyservicev1.RateLimit{Limit: int64(rl.Limit), Period: durationpb.New(rl.Period), Burst: int64(rl.Burst)}
	}
	return out
}

func codeToProto(c validate.Code) keyservicev1.Code {
	switch c {
	case validate.Valid:
		return keyservicev1.Code_CODE_VALID
	case validate.Malformed:
		return keyservicev1.Code_CODE_MALFORMED
	case validate.NotFound:
		return keyservicev1.Code_CODE_NOT_FOUND
	case validate.Revoked:
		return keyservicev1.Code_CODE_REVOKED
	case validate.Expired:
		return keyservicev1.Code_CODE_EXPIRED
	case validate.RateLimited:
		return keyservicev1.Code_CODE_RATE_LIMITED
	}
	return keyservicev1.Code_CODE_UNSPECIFIED
}
