package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// credRevokeTarget is the promise: a credential revoked on one replica is
// refused on every other within 100 ms at p99.
const credRevokeTarget = 100.0

// CredentialRevocationResult: a stored credential revoked on replica A,
// timed until replica B refuses it (UNAUTHENTICATED).
type CredentialRevocationResult struct {
	Trials   int       `json:"trials"`
	RevokeMS LatencyMS `json:"revoke_to_unauthenticated_ms"`
}

// credentialCtx sends secret as the call's credential. The secret stays
// in the context: it is never logged nor put in an error.
func credentialCtx(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

// pollCall calls call until done accepts its error, or 10 s pass. Polls
// are 100 µs apart (as pollUntil's), so the time measured is the
// propagation's, not the polling's.
func pollCall(ctx context.Context, call func() error, done func(error) bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < 10*time.Second && ctx.Err() == nil {
		if done(call()) {
			return time.Since(start), true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(start), false
}

func isCode(c codes.Code) func(error) bool {
	return func(err error) bool { return status.Code(err) == c }
}

// credentialRevocation runs, per trial, a credential created on replica A
// (keys.validate, every keyspace), known and accepted on replica B (not
// timed), then revoked on A: timed until B answers a Validate carrying it
// with UNAUTHENTICATED.
func (e *env) credentialRevocation(ctx context.Context, ga, gb *grpcValidator) (CredentialRevocationResult, error) {
	a, b := ga.clients[0], gb.clients[0]
	// Any key will do (the answer's code does not matter): a hot one is
	// answered from memory, so each poll is cheap.
	key := e.active[0]
	// Names are unique per run too, in case the database outlives one.
	var nonce [4]byte
	_, _ = crand.Read(nonce[:])
	run := hex.EncodeToString(nonce[:])
	var revoked []time.Duration
	for i := 0; i < e.cfg.Trials; i++ {
		name := fmt.Sprintf("keybench-cred-%s-%d", run, i)
		c, err := a.CreateCredential(adminCtx(ctx), &keyservicev1.CreateCredentialRequest{
			Name: name, Permissions: []string{"keys.validate"}, AllKeyspaces: true})
		if err != nil {
			return CredentialRevocationResult{}, fmt.Errorf("trial %d: creating credential %s: %w", i, name, err)
		}
		cctx := credentialCtx(ctx, c.GetSecret())
		validate := func() error {
			_, err := b.Validate(cctx, &keyservicev1.ValidateRequest{Key: key})
			return err
		}
		// Unless caller credentials are required (they are not in the
		// bench), B validates for a token it does not know as for no token,
		// so a Validate that succeeds does not show that B holds the
		// credential. A call it lacks the permission for does: PERMISSION_DENIED
		// once B knows it, UNAUTHENTICATED before. The revocation must then
		// replace an entry B holds, not fill an empty one.
		if _, ok := pollCall(ctx, func() error {
			_, err := b.GetKey(cctx, &keyservicev1.GetKeyRequest{})
			return err
		}, isCode(codes.PermissionDenied)); !ok {
			return CredentialRevocationResult{}, fmt.Errorf("trial %d: credential %s never reached the other replica", i, name)
		}
		if _, ok := pollCall(ctx, validate, func(err error) bool { return err == nil }); !ok {
			return CredentialRevocationResult{}, fmt.Errorf("trial %d: the other replica never accepted credential %s for Validate: %s",
				i, name, status.Code(validate()))
		}
		if _, err := a.RevokeCredential(adminCtx(ctx), &keyservicev1.RevokeCredentialRequest{Id: c.GetCredential().GetId()}); err != nil {
			return CredentialRevocationResult{}, fmt.Errorf("trial %d: revoking credential %s: %w", i, name, err)
		}
		d, ok := pollCall(ctx, validate, isCode(codes.Unauthenticated))
		if !ok {
			return CredentialRevocationResult{}, fmt.Errorf("trial %d: credential %s revoked on one replica, still not refused on the other after %s",
				i, name, d.Round(time.Millisecond))
		}
		revoked = append(revoked, d)
	}
	return CredentialRevocationResult{Trials: e.cfg.Trials, RevokeMS: latency(revoked)}, nil
}

func (r CredentialRevocationResult) met() bool { return r.RevokeMS.P99 < credRevokeTarget }

// writeMarkdown writes the measurement's line (none when it did not run).
func (r CredentialRevocationResult) writeMarkdown(w io.Writer) {
	if r.Trials == 0 {
		return
	}
	mark := "missed"
	if r.met() {
		mark = "met"
	}
	l := r.RevokeMS
	fmt.Fprintf(w, "- **Credential revoked on one replica, refused (UNAUTHENTICATED) on the other** (%d trials): p50 %.2f / p90 %.2f / p99 %.2f / max %.2f ms; p99 target < %.0f ms: %s.\n",
		r.Trials, l.P50, l.P90, l.P99, l.Max, credRevokeTarget, mark)
}

// judge adds the measurement's target to the report's (none when it did
// not run).
func (r CredentialRevocationResult) judge(add func(ok bool, format string, args ...any)) {
	if r.Trials == 0 {
		return
	}
	add(r.met(), "credential revoked→UNAUTHENTICATED on another replica p99 %.2f ms, max %.2f ms (target < %.0f)",
		r.RevokeMS.P99, r.RevokeMS.Max, credRevokeTarget)
}
