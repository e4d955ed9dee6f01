package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/middleware"
)

// badRequest is a client mistake in one field of a request.
type badRequest struct {
	field, msg string
}

func (e *badRequest) Error() string { return e.field + ": " + e.msg }

func invalid(field, format string, args ...any) error {
	return &badRequest{field: field, msg: fmt.Sprintf(format, args...)}
}

// notFound: the named thing does not exist, or the credential may not see
// it (the two look the same).
type notFound struct{ what string }

func (e *notFound) Error() string { return e.what + " not found" }

// denied: the credential may not do this (PERMISSION_DENIED).
type denied struct{ msg string }

func (e *denied) Error() string { return e.msg }

func deny(format string, args ...any) error { return &denied{msg: fmt.Sprintf(format, args...)} }

// errNoSeal: a write with a request_id on a service with nothing to seal
// its kept answer with.
var errNoSeal = errors.New("request_id needs KEYSERVICE_SEAL_KEY (or an admin token) on the server, to seal the answer kept for retries: without it the write was not made; retry without request_id or configure the key")

// commitUnknownMsg answers a write whose COMMIT lost its answer.
const commitUnknownMsg = "the connection to the key store broke as the write committed: it may have been applied; retry with the same request_id"

// ToStatus is the one place where errors become gRPC statuses. Faults are
// logged in full here and reach the client as a plain message, never with
// SQL or driver detail.
func ToStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var br *badRequest
	var nf *notFound
	var dn *denied
	var nc *noCredits
	switch {
	case errors.As(err, &nc):
		return status.Error(codes.FailedPrecondition, nc.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, nf.Error())
	case errors.As(err, &dn):
		return status.Error(codes.PermissionDenied, dn.msg)
	case errors.Is(err, errNoSeal):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, apikey.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case ctx.Err() == context.Canceled || errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "call canceled")
	case ctx.Err() == context.DeadlineExceeded:
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.As(err, &br):
		st := status.New(codes.InvalidArgument, br.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: br.field, Description: br.msg},
		}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, apikey.ErrNotFound):
		return status.Error(codes.NotFound, "key not found")
	case errors.Is(err, apikey.ErrChargeReused):
		return status.Error(codes.InvalidArgument, "request_id was already used for another charge (another key, cost or amount) within the idempotency window: use a new request_id for a new charge")
	case errors.Is(err, apikey.ErrCreditsBounds):
		return status.Error(codes.InvalidArgument, "amount: the credits would leave -10^15 to 10^15")
	case errors.Is(err, apikey.ErrCreditsNegative):
		return status.Error(codes.InvalidArgument, "amount: taking that many would leave fewer than 0 credits (only ReportUsage charges below zero)")
	case errors.Is(err, apikey.ErrNoCredits):
		return status.Error(codes.FailedPrecondition, "no credits: give them credits first (UpdateKey or UpdateOwner, credits)")
	case errors.Is(err, apikey.ErrRequestReused):
		return status.Error(codes.AlreadyExists, "request_id was already used for a different request (another method or body) within the idempotency window: use a new request_id for a new write")
	case errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrRotated), errors.Is(err, apikey.ErrExpired),
		errors.Is(err, apikey.ErrExpiredStays), errors.Is(err, apikey.ErrRotatedExpiry):
		return status.Error(codes.FailedPrecondition, preconditionOf(err))
	case errors.Is(err, apikey.ErrUnavailable):
		if !errors.Is(err, apikey.ErrNoSlot) { // the store logs those once per episode
			log.WarnContext(ctx, "store unavailable", "request_id", middleware.RequestIDFrom(ctx), "error", err)
		}
		if errors.Is(err, apikey.ErrCommitUnknown) {
			return status.Error(codes.Unavailable, commitUnknownMsg)
		}
		return status.Error(codes.Unavailable, "key store unavailable, retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	log.ErrorContext(ctx, "internal error", "request_id", middleware.RequestIDFrom(ctx), "error", err)
	return status.Error(codes.Internal, "internal error")
}

// MapErrors is the innermost interceptor: every error a handler returns
// becomes a status here, so every other interceptor sees the final code.
func MapErrors(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, ToStatus(ctx, log, err)
		}
		return resp, nil
	}
}
