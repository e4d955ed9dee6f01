package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/backoff"
)

// Admin writes: their requests built from the command line, and sent
// with one request_id, retried while the server answers UNAVAILABLE.

// writeAttempts bounds the tries of one admin write (within --timeout).
const writeAttempts = 3

// send sends an admin write until it is answered other than UNAVAILABLE,
// at most writeAttempts times within ctx. The request carries the same
// request_id each time, so the server applies it once and a retry of a
// write that was applied gets its answer (the same secret).
//
// retry is what to add to the command to retry it by hand (see retryFlags).
func send[R any](ctx context.Context, retry string, call func(context.Context) (R, error)) (R, error) {
	b := backoff.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 1; ; attempt++ {
		resp, err := call(ctx)
		if err == nil {
			return resp, nil
		}
		if status.Code(err) != codes.Unavailable || attempt == writeAttempts || !backoff.Sleep(ctx, b.Next()) {
			return resp, writeErr(err, retry)
		}
	}
}

// writeErr is rpcErr, and for an outcome the client cannot know (the
// server unavailable, the deadline passed) how to retry the write safely.
func writeErr(err error, retry string) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w (the write may have been applied: run the same command with %s to retry it safely)", rpcErr(err), retry)
	}
	return rpcErr(err)
}

// retryFlags are the flags that make a rerun of the command the same
// request: its request id and, when the write sets an expiry, that expiry
// as a time (a relative --expires would move, the request would differ,
// and the server would refuse the retry as another request).
func retryFlags(requestID string, expires *timestamppb.Timestamp) string {
	s := "--request-id " + requestID
	if expires != nil {
		s += " --expires " + expires.AsTime().UTC().Format(time.RFC3339Nano)
	}
	return s
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--expires %q: want an RFC 3339 time (2030-01-01T00:00:00Z) or a duration (720h)", s)
}

// createRequest builds CreateKey's request from the command line.
func createRequest(args []string, name, owner, expires, rateLimit string, burst int, scopes, meta multi) (*keyservicev1.CreateKeyRequest, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", args[0])
	}
	if name == "" || owner == "" {
		return nil, errors.New("--name and --owner are required")
	}
	req := &keyservicev1.CreateKeyRequest{Name: name, Owner: owner, Scopes: scopes}
	if len(meta) > 0 {
		req.Metadata = map[string]string{}
		for _, kv := range meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--meta %q: want key=value", kv)
			}
			req.Metadata[k] = v
		}
	}
	if expires != "" {
		t, err := parseExpiry(expires)
		if err != nil {
			return nil, err
		}
		req.ExpiresAt = timestamppb.New(t)
	}
	if rateLimit != "" {
		n, p, ok := strings.Cut(rateLimit, "/")
		limit, err1 := strconv.ParseInt(n, 10, 64)
		period, err2 := time.ParseDuration(p)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--rate-limit %q: want limit/period such as 100/1m", rateLimit)
		}
		req.RateLimit = &keyservicev1.RateLimit{Limit: limit, Period: durationpb.New(period), Burst: int64(burst)}
	}
	return req, nil
}

// updateFlags are update's flags that clear a field.
type updateFlags struct {
	noScopes, noMeta, noExpiry, defaultLimit, anyAddress bool
}

// updateRequest builds UpdateKey's request: the flags given are the mask.
func updateRequest(id string, set map[string]bool, name, expires, rateLimit string, burst int, scopes, meta, cidrs multi, u updateFlags) (*keyservicev1.UpdateKeyRequest, error) {
	conflict := func(a, b string) error {
		if set[a] && set[b] {
			return fmt.Errorf("--%s and --%s contradict each other", a, b)
		}
		return nil
	}
	for _, p := range [][2]string{{"scope", "no-scopes"}, {"meta", "no-meta"}, {"expires", "no-expiry"}, {"rate-limit", "default-rate-limit"}, {"allow-cidr", "any-address"}} {
		if err := conflict(p[0], p[1]); err != nil {
			return nil, err
		}
	}
	if set["burst"] && !set["rate-limit"] {
		return nil, errors.New("--burst needs --rate-limit")
	}
	// An empty value (an unset shell variable) must not clear the field:
	// clearing has its own flags.
	for fl, v := range map[string]string{"name": name, "expires": expires, "rate-limit": rateLimit} {
		if set[fl] && strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("--%s is empty", fl)
		}
	}
	// The common parts are checked as create checks them.
	base, err := createRequest(nil, "-", "-", expires, rateLimit, burst, scopes, meta)
	if err != nil {
		return nil, err
	}
	k := &keyservicev1.Key{Id: id, Name: name, Scopes: base.GetScopes(), Metadata: base.GetMetadata(),
		ExpiresAt: base.GetExpiresAt(), RateLimit: base.GetRateLimit(), AllowedCidrs: cidrs}
	var paths []string
	for _, f := range []struct {
		flags []string
		path  string
	}{
		{[]string{"name"}, "name"},
		{[]string{"scope", "no-scopes"}, "scopes"},
		{[]string{"meta", "no-meta"}, "metadata"},
		{[]string{"expires", "no-expiry"}, "expires_at"},
		{[]string{"rate-limit", "default-rate-limit"}, "rate_limit"},
		{[]string{"allow-cidr", "any-address"}, "allowed_cidrs"},
	} {
		for _, fl := range f.flags {
			if set[fl] {
				paths = append(paths, f.path)
				break
			}
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("nothing to change: give at least one of --name, --scope, --no-scopes, --meta, --no-meta, --expires, --no-expiry, --rate-limit, --default-rate-limit, --allow-cidr, --any-address (enable and disable are their own commands)")
	}
	return &keyservicev1.UpdateKeyRequest{Key: k, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}, nil
}
