package service

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
)

// Admin writes named by a request_id (AIP-155): the store claims the id,
// per admin token name, in the write's own transaction and records the
// answer there, sealed with AES-256-GCM; a retry within the window gets
// that answer instead of a second write (see apikey.Request).

// Idempotency says how the answers of admin writes made with a request_id
// are kept: sealed with Key (see IdempotencyKey; nil: derived from no
// tokens), for Window (0: DefaultIdempotencyWindow).
type Idempotency struct {
	Key    []byte
	Window time.Duration
	// Off: no secret to seal answers with; a write with a request_id is
	// refused (FAILED_PRECONDITION) rather than kept under a known key.
	Off bool
}

// DefaultIdempotencyWindow is how long answers are kept when Config says
// nothing.
const DefaultIdempotencyWindow = 24 * time.Hour

// IdempotencyKey is the AES-256 key that seals the recorded answers of
// admin writes (they hold new secrets). Like PageTokenKey it is derived
// from the admin tokens, which every replica shares, with HKDF-SHA-256 and
// a label of its own: a database alone cannot open them, and changing the
// admin tokens makes the answers recorded before unreadable.
func IdempotencyKey(adminTokens []string) []byte {
	sorted := slices.Clone(adminTokens)
	slices.Sort(sorted)
	var secret []byte
	for _, t := range sorted {
		secret = append(append(secret, 0), t...)
	}
	// HKDF fails only for keys longer than 255 hash lengths.
	k, _ := hkdf.Key(sha256.New, secret, nil, "keyservice idempotent answers v1", 32)
	return k
}

// newAEAD is AES-256-GCM with key (IdempotencyKey(nil) when nil). A key
// of another length is a programming error.
func newAEAD(key []byte) cipher.AEAD {
	if key == nil {
		key = IdempotencyKey(nil)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("service: idempotency key: %v", err))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("service: idempotency key: %v", err))
	}
	return aead
}

// idempotent is an admin write's request, which may carry a request_id.
type idempotent interface {
	proto.Message
	GetRequestId() string
}

// answerFunc builds a write's answer from the records the store returns.
type answerFunc func(recs ...apikey.Key) proto.Message

// withRequest returns ctx for the write of req: with a request_id, the
// store records the write's answer (built by answer, sealed) and gives it
// to a retry (see replay). Without one, ctx is returned as it is.
func (s *Service) withRequest(ctx context.Context, method string, req idempotent, answer answerFunc) (context.Context, error) {
	if req.GetRequestId() == "" {
		return ctx, nil
	}
	if s.idemOff {
		return ctx, errNoSeal
	}
	id, err := requestID(req)
	if err != nil {
		return ctx, err
	}
	hash, err := bodyHash(req)
	if err != nil {
		return ctx, err
	}
	ad := additionalData(ctx, method, id)
	return apikey.WithRequest(ctx, &apikey.Request{
		ID: id, Method: method, BodyHash: hash, Window: s.window,
		Answer: func(recs ...apikey.Key) ([]byte, error) {
			plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(answer(recs...))
			if err != nil {
				return nil, err
			}
			nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
			if _, err := rand.Read(nonce); err != nil {
				return nil, err
			}
			return s.aead.Seal(nonce, nonce, plain, ad), nil
		},
	}), nil
}

// replay returns the answer recorded for req when err says that req was
// already applied (apikey.Replayed), decoded into out; else err.
func replay[R proto.Message](s *Service, ctx context.Context, method string, req idempotent, err error, out R) (R, error) {
	var zero R
	var r *apikey.Replayed
	if !errors.As(err, &r) {
		return zero, err
	}
	id, err := requestID(req)
	if err != nil {
		return zero, err
	}
	n := s.aead.NonceSize()
	if len(r.Answer) < n {
		return zero, fmt.Errorf("the recorded answer of request %s is %d bytes", id, len(r.Answer))
	}
	plain, err := s.aead.Open(nil, r.Answer[:n], r.Answer[n:], additionalData(ctx, method, id))
	if err != nil {
		return zero, status.Error(codes.FailedPrecondition, "this request_id was applied, but its recorded answer cannot be read here (the admin tokens changed since): find the write in the audit trail")
	}
	if err := proto.Unmarshal(plain, out); err != nil {
		return zero, fmt.Errorf("decoding the recorded answer of request %s: %w", id, err)
	}
	return out, nil
}

// additionalData binds a sealed answer to its admin, request and method,
// so that no row can be opened as another's.
func additionalData(ctx context.Context, method string, id uuid.UUID) []byte {
	owner := apikey.OwnerOf(apikey.CredentialOf(ctx))
	if owner == "" {
		owner = caller.ActorFrom(ctx)
	}
	return fmt.Appendf(nil, "%s\x00%s\x00%s", owner, id, method)
}

func requestID(req idempotent) (uuid.UUID, error) {
	id, err := uuid.Parse(req.GetRequestId())
	if err != nil || id == uuid.Nil {
		return uuid.Nil, invalid("request_id", "must be a UUID such as 6f1c2d9e-8a47-4b6e-9a1f-2c3d4e5f6a7b, a new one for each write and the same one for its retries")
	}
	return id, nil
}

// bodyHash is SHA-256 of req in deterministic protobuf with request_id
// cleared: the same request over gRPC or REST hashes the same.
func bodyHash(req idempotent) ([]byte, error) {
	m := proto.Clone(req)
	r := m.ProtoReflect()
	r.Clear(r.Descriptor().Fields().ByName("request_id"))
	// Spellings UpdateKey, RevokeKey and RotateKey read as one are one: a
	// UUID in any case, a mask's paths in camelCase or snake_case, in any
	// order, and rate_limit's parts (the mask the gateway makes of a REST
	// body) as the whole limit.
	canonical := func(id *string) {
		if u, err := uuid.Parse(*id); err == nil {
			*id = u.String()
		}
	}
	switch r := m.(type) {
	case *keyservicev1.UpdateKeyRequest:
		if r.Key != nil {
			canonical(&r.Key.Id)
		}
		if r.UpdateMask != nil {
			for i, p := range r.UpdateMask.Paths {
				if f := snakeCase(p); strings.HasPrefix(f, "rate_limit.") {
					r.UpdateMask.Paths[i] = apikey.FieldRateLimit
				} else {
					r.UpdateMask.Paths[i] = f
				}
			}
			slices.Sort(r.UpdateMask.Paths)
			r.UpdateMask.Paths = slices.Compact(r.UpdateMask.Paths)
		}
	case *keyservicev1.RevokeKeyRequest:
		canonical(&r.Id)
	case *keyservicev1.RotateKeyRequest:
		canonical(&r.Id)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}
