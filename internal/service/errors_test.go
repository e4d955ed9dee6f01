package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyservice/keyservice/internal/apikey"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(ToStatus(context.Background(), log, tt.err))
			if st.Code() != tt.want || st.Message() != tt.msg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tt.want, tt.msg)
			}
		})
	}
}
