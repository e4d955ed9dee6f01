package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
)

// asAdmin is a call made with the admin token named name.
func asAdmin(name string) context.Context { return caller.WithActor(context.Background(), name) }

// TestRetriedWriteGetsTheFirstAnswer: a write retried with its request_id
// gets the answer recorded by the first (the same secret and ids, though
// the retry made a new secret and the store a new id), for each write and
// for every spelling of the same request (an id in capitals, a mask in
// camelCase, in another order, with repeats, or a rate_limit part); the
// recorded answer is sealed (no secret in it) and bound to its window.
func TestRetriedWriteGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	rid := uuid.NewString()
	upper := strings.ToUpper(goodID)
	rl := &keyservicev1.RateLimit{Limit: 2, Period: durationpb.New(time.Second)}
	tests := []struct {
		name         string
		first, retry func(*Service) (proto.Message, error)
	}{
		{"CreateKey", func(s *Service) (proto.Message, error) {
			return s.CreateKey(asAdmin("ci"), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RequestId: rid})
		}, func(s *Service) (proto.Message, error) {
			return s.CreateKey(asAdmin("ci"), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RequestId: strings.ToUpper(rid)})
		}},
		{"RotateKey", func(s *Service) (proto.Message, error) {
			return s.RotateKey(asAdmin("ci"), &keyservicev1.RotateKeyRequest{Id: goodID, GracePeriod: durationpb.New(time.Hour), RequestId: rid})
		}, func(s *Service) (proto.Message, error) {
			return s.RotateKey(asAdmin("ci"), &keyservicev1.RotateKeyRequest{Id: upper, GracePeriod: durationpb.New(time.Hour), RequestId: rid})
		}},
		{"RevokeKey", func(s *Service) (proto.Message, error) {
			return s.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: goodID, RequestId: rid})
		}, func(s *Service) (proto.Message, error) {
			return s.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: upper, RequestId: rid})
		}},
		{"UpdateKey", func(s *Service) (proto.Message, error) {
			return s.UpdateKey(asAdmin("ci"), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: goodID, Name: "x", RateLimit: rl},
				UpdateMask: mask("name", "rate_limit"), RequestId: rid})
		}, func(s *Service) (proto.Message, error) {
			return s.UpdateKey(asAdmin("ci"), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: upper, Name: "x", RateLimit: rl},
				UpdateMask: mask("rateLimit.limit", "name", "rate_limit.period", "name"), RequestId: rid})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newFakeStore()
			s := New(Config{Keys: st, Tenancy: testTenancy(t), Idempotency: Idempotency{Key: IdempotencyKey([]string{"tok"}), Window: time.Hour}})
			first, err := tt.first(s)
			if err != nil {
				t.Fatal(err)
			}
			st.key.Name = "changed since" // a second write would show it
			again, err := tt.retry(s)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first, again) {
				t.Fatalf("the retry answered\n%v\nthe first\n%v", again, first)
			}
			if len(st.requests) != 1 {
				t.Fatalf("%d requests recorded", len(st.requests))
			}
			for _, m := range st.requests {
				if secret := secretOf(first); secret != "" && bytes.Contains(m.answer, []byte(secret)) {
					t.Fatal("the recorded answer holds the secret in clear")
				}
			}
		})
	}
}

func secretOf(m proto.Message) string {
	if s, ok := m.(interface{ GetSecret() string }); ok {
		return s.GetSecret()
	}
	return ""
}

// TestRequestIDOfAnotherRequestIsAlreadyExists: a request_id used for
// another body or method is ALREADY_EXISTS, and a write without one is
// not recorded.
func TestRequestIDOfAnotherRequestIsAlreadyExists(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	s := newTestService(t, st, nil, nil)
	rid := uuid.NewString()
	if _, err := s.CreateKey(asAdmin("ci"), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RequestId: rid}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"another body": func() error {
			_, err := s.CreateKey(asAdmin("ci"), &keyservicev1.CreateKeyRequest{Name: "n2", Owner: "o", RequestId: rid})
			return err
		},
		"another method": func() error {
			_, err := s.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: goodID, RequestId: rid})
			return err
		},
	} {
		if st := statusOf(call()); st.Code() != codes.AlreadyExists || !strings.Contains(st.Message(), "use a new request_id for a new write") {
			t.Errorf("%s: %v %q", name, st.Code(), st.Message())
		}
	}
	if _, err := s.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: goodID}); err != nil || len(st.requests) != 1 {
		t.Fatalf("a write without request_id: %v, %d recorded", err, len(st.requests))
	}
	st.err = apikey.ErrRevoked
	if _, err := s.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: goodID, RequestId: uuid.NewString()}); statusOf(err).Code() != codes.FailedPrecondition {
		t.Fatalf("the store's refusal of a named write: %v", err)
	}
}

// TestRecordedAnswerOpensOnlyForItsAdminAndTokens: an answer recorded by
// one admin does not open as another's, nor after the admin tokens
// changed, nor as another method's (FAILED_PRECONDITION, pointing to the
// audit trail); a damaged
// record is an internal error, never a wrong answer.
func TestRecordedAnswerOpensOnlyForItsAdminAndTokens(t *testing.T) {
	t.Parallel()
	rid := uuid.NewString()
	req := &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RequestId: rid}
	st := newFakeStore()
	old := New(Config{Keys: st, Tenancy: testTenancy(t), Idempotency: Idempotency{Key: IdempotencyKey([]string{"old"})}})
	if _, err := old.CreateKey(asAdmin("ci"), req); err != nil {
		t.Fatal(err)
	}
	renewed := New(Config{Keys: st, Tenancy: testTenancy(t), Idempotency: Idempotency{Key: IdempotencyKey([]string{"new"})}})
	for name, call := range map[string]func() error{
		"another admin": func() error { _, err := old.CreateKey(asAdmin("ops"), req); return err },
		"new tokens":    func() error { _, err := renewed.CreateKey(asAdmin("ci"), req); return err },
	} {
		if st := statusOf(call()); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "find the write in the audit trail") {
			t.Errorf("%s: %v %q", name, st.Code(), st.Message())
		}
	}
	// Were the store to replay it for another method, it would not open.
	st.anyRequest = true
	if st := statusOf(func() error {
		_, err := old.RevokeKey(asAdmin("ci"), &keyservicev1.RevokeKeyRequest{Id: goodID, RequestId: rid})
		return err
	}()); st.Code() != codes.FailedPrecondition {
		t.Errorf("another method's answer: %v %q", st.Code(), st.Message())
	}
	for _, m := range st.requests {
		m.answer = m.answer[:5]
	}
	if st := statusOf(func() error { _, err := old.CreateKey(asAdmin("ci"), req); return err }()); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("a truncated record: %v %q", st.Code(), st.Message())
	}
}

// TestIdempotencyKeyDependsOnTheSetOfTokens: every replica derives the
// same key from the same admin tokens in any order, and another key from
// other tokens.
func TestIdempotencyKeyDependsOnTheSetOfTokens(t *testing.T) {
	t.Parallel()
	a, b := IdempotencyKey([]string{"x", "y"}), IdempotencyKey([]string{"y", "x"})
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("order matters or wrong size: %x %x", a, b)
	}
	for _, other := range [][]string{{"x"}, {"xy"}, {"x", "y", "z"}, nil} {
		if bytes.Equal(a, IdempotencyKey(other)) {
			t.Errorf("tokens %q give the same key", other)
		}
	}
	if bytes.Equal(IdempotencyKey([]string{"x"}), PageTokenKey([]string{"x"})) {
		t.Error("page tokens and recorded answers share a key")
	}
}

// TestRequestIDRefusedWithoutASealKey: with nothing to seal the kept
// answer with, a write with a request_id is FAILED_PRECONDITION and writes
// nothing.
func TestRequestIDRefusedWithoutASealKey(t *testing.T) {
	t.Parallel()
	st := &fakeStore{}
	s := New(Config{Keys: st, Tenancy: testTenancy(t), Idempotency: Idempotency{Off: true}})
	_, err := s.CreateKey(context.Background(), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", RequestId: "6f1d3c2a-9b8e-4d7f-a6c5-1e2d3f4a5b6c"})
	if got := status.Code(ToStatus(context.Background(), slog.New(slog.DiscardHandler), err)); got != codes.FailedPrecondition {
		t.Fatalf("CreateKey with a request_id: %v, want FailedPrecondition", err)
	}
	if len(st.calls) != 0 {
		t.Fatalf("the store was called: %v", st.calls)
	}
}
