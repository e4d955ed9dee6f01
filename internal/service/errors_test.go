package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/middleware"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sqlErr := errors.New(`ERROR: duplicate key value violates unique constraint "api_keys_key_hash_idx" (SQLSTATE 23505)`)
	tests := []struct {
		name string
		err  error
		want codes.Code
		msg  string
	}{
		{"status passes through", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied, "no"},
		{"bad request", invalid("name", "is required"), codes.InvalidArgument, "name: is required"},
		{"not found", fmt.Errorf("get: %w", apikey.ErrNotFound), codes.NotFound, "key not found"},
		{"store unavailable", fmt.Errorf("x: %w", apikey.ErrUnavailable), codes.Unavailable, "key store unavailable, retry later"},
		{"commit outcome unknown", fmt.Errorf("x: %w", apikey.ErrCommitUnknown), codes.Unavailable, commitUnknownMsg},
		{"request id reused", fmt.Errorf("x: %w", apikey.ErrRequestReused), codes.AlreadyExists, "request_id was already used for a different request (another method or body) within the idempotency window: use a new request_id for a new write"},
		{"filter not loaded", fmt.Errorf("%w: key filter not loaded yet", apikey.ErrUnavailable), codes.Unavailable, "key store unavailable, retry later"},
		{"canceled", context.Canceled, codes.Canceled, "call canceled"},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
		{"driver detail is hidden", sqlErr, codes.Internal, "internal error"},
		{"revoked", fmt.Errorf("update: %w", apikey.ErrRevoked), codes.FailedPrecondition, "the key is revoked: a revoked key cannot be updated or rotated"},
		{"rotated", fmt.Errorf("rotate: %w", apikey.ErrRotated), codes.FailedPrecondition, "the key was already rotated: rotate its successor (rotated_to) instead"},
		{"expired", fmt.Errorf("rotate: %w", apikey.ErrExpired), codes.FailedPrecondition, "the key has expired: create a new key instead (a successor would copy the expiry)"},
		{"expired stays expired", fmt.Errorf("update: %w", apikey.ErrExpiredStays), codes.FailedPrecondition, "the key has expired, and an expired key stays expired: its expires_at cannot change; reissue or rotate instead (create a new key, or rotate its successor)"},
		{"rotated key's expiry", fmt.Errorf("update: %w", apikey.ErrRotatedExpiry), codes.FailedPrecondition, "the key was rotated: its expires_at may only move earlier (not later, not cleared); to keep it, rotate its successor instead"},
		{"no connection slot", fmt.Errorf("%w: %w", apikey.ErrUnavailable, apikey.ErrNoSlot), codes.Unavailable, "key store unavailable, retry later"},
		{"replayed outside a write", &apikey.Replayed{Answer: []byte("sealed")}, codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(ToStatus(context.Background(), log, tt.err))
			if tt.want != codes.InvalidArgument && len(st.Details()) != 0 {
				t.Errorf("details %v", st.Details())
			}
			if st.Code() != tt.want || st.Message() != tt.msg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tt.want, tt.msg)
			}
		})
	}
}

// TestToStatusLogsFaultsNotClientMistakes: a fault (an internal error, the
// store unavailable) is logged in full with the call's request id, the
// client seeing only the plain message; a client's mistake, a missing key,
// a lack of connection slots (the store logs those once per episode) and
// a call the client ended are not logged; the call's own end (canceled,
// past its deadline) wins over the error it caused.
func TestToStatusLogsFaultsNotClientMistakes(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	late, stop := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer stop()
	fault := errors.New(`conn 7: SELECT key_hash FROM api_keys: broken pipe`)
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		want   codes.Code
		logged string // "" for nothing
	}{
		{"internal", context.Background(), fault, codes.Internal, "internal error"},
		{"unavailable", context.Background(), fmt.Errorf("%w: %w", apikey.ErrUnavailable, fault), codes.Unavailable, "store unavailable"},
		{"no slot", context.Background(), fmt.Errorf("%w: %w", apikey.ErrUnavailable, apikey.ErrNoSlot), codes.Unavailable, ""},
		{"bad request", context.Background(), invalid("name", "is required"), codes.InvalidArgument, ""},
		{"not found", context.Background(), apikey.ErrNotFound, codes.NotFound, ""},
		{"client canceled", canceled, fault, codes.Canceled, ""},
		{"past the deadline", late, fault, codes.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		ctx, _ := middleware.WithRequestID(tt.ctx, "req-42")
		st := status.Convert(ToStatus(ctx, log, tt.err))
		if st.Code() != tt.want || strings.Contains(st.Message(), "api_keys") {
			t.Errorf("%s: %v %q, want %v without driver detail", tt.name, st.Code(), st.Message(), tt.want)
		}
		got := buf.String()
		switch {
		case tt.logged == "" && got != "":
			t.Errorf("%s: logged %q", tt.name, got)
		case tt.logged != "" && (!strings.Contains(got, tt.logged) || !strings.Contains(got, "request_id=req-42") || !strings.Contains(got, "broken pipe")):
			t.Errorf("%s: logged %q, want %q with the request id and the cause", tt.name, got, tt.logged)
		}
	}
}

// TestMapErrorsTurnsHandlerErrorsIntoStatuses: the interceptor passes
// answers through and maps errors with ToStatus.
func TestMapErrorsTurnsHandlerErrorsIntoStatuses(t *testing.T) {
	t.Parallel()
	intercept := MapErrors(slog.New(slog.NewTextHandler(io.Discard, nil)))
	resp, err := intercept(context.Background(), nil, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) { return "ok", nil })
	if resp != "ok" || err != nil {
		t.Fatalf("answer: %v %v", resp, err)
	}
	resp, err = intercept(context.Background(), nil, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) {
		return "partial", fmt.Errorf("x: %w", apikey.ErrRotated)
	})
	if resp != nil || status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("error: %v %v", resp, err)
	}
}
