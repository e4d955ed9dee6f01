package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
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

// keyFields are the flags of create and update that set a key's fields.
type keyFields struct {
	name, owner, expires, rateLimit, format string
	keyspace                                string
	burst                                   int
	scopes, meta, cidrs                     []string
}

func (k *keyFields) register(f *pflag.FlagSet, create bool) {
	if create {
		f.StringVar(&k.name, "name", "", "key name (required)")
		f.StringVar(&k.owner, "owner", "", "owner, the customer the key belongs to (required)")
		f.StringVar(&k.format, "format", "", "the secret's format: checksum or signed (default: the keyspace's, else the service's KEYSERVICE_DEFAULT_KEY_FORMAT; signed needs KEYSERVICE_SIGNING_KEYS)")
		f.StringVar(&k.keyspace, "keyspace", "", "the keyspace (name or id) of the new key, whose defaults fill what is not given (default: the default keyspace)")
	} else {
		f.StringVar(&k.name, "name", "", "key name")
	}
	f.StringArrayVar(&k.scopes, "scope", nil, "scope (repeat for several)")
	f.StringArrayVar(&k.meta, "meta", nil, "metadata key=value (repeat for several)")
	f.StringVar(&k.expires, "expires", "", "expiry: an RFC 3339 time (2030-01-01T00:00:00Z) or a duration from now (720h)")
	f.StringVar(&k.rateLimit, "rate-limit", "", "the key's own limit as limit/period, e.g. 100/1m (limit 1 to 1000000000, period 1ms to 24h)")
	f.IntVar(&k.burst, "burst", 0, "burst of the key's limit (default: the limit)")
	f.StringArrayVar(&k.cidrs, "allow-cidr", nil, "an address range the key may be used from, e.g. 203.0.113.0/24 (repeat for several)")
}

// parseFormat reads --format.
func parseFormat(s string) (keyservicev1.Format, error) {
	switch s {
	case "":
		return keyservicev1.Format_FORMAT_UNSPECIFIED, nil
	case "checksum":
		return keyservicev1.Format_FORMAT_CHECKSUM, nil
	case "signed":
		return keyservicev1.Format_FORMAT_SIGNED, nil
	}
	return 0, fmt.Errorf("--format %q: want checksum or signed", s)
}

// createRequest builds CreateKey's request from the command line.
func createRequest(k keyFields) (*keyservicev1.CreateKeyRequest, error) {
	if k.name == "" || k.owner == "" {
		return nil, errors.New("--name and --owner are required")
	}
	format, err := parseFormat(k.format)
	if err != nil {
		return nil, err
	}
	req := &keyservicev1.CreateKeyRequest{Name: k.name, Owner: k.owner, Scopes: k.scopes, Format: format, AllowedCidrs: k.cidrs, Keyspace: k.keyspace}
	if len(k.meta) > 0 {
		req.Metadata = map[string]string{}
		for _, kv := range k.meta {
			mk, v, ok := strings.Cut(kv, "=")
			if !ok || mk == "" {
				return nil, fmt.Errorf("--meta %q: want key=value", kv)
			}
			req.Metadata[mk] = v
		}
	}
	if k.expires != "" {
		t, err := parseExpiry(k.expires)
		if err != nil {
			return nil, err
		}
		req.ExpiresAt = timestamppb.New(t)
	}
	if k.rateLimit != "" {
		l, err := apikey.ParseRate(k.rateLimit)
		if err != nil {
			return nil, fmt.Errorf("--rate-limit: %w", err)
		}
		req.RateLimit = &keyservicev1.RateLimit{Limit: int64(l.Limit), Period: durationpb.New(l.Period), Burst: int64(k.burst)}
	}
	return req, nil
}

// updateFlags are update's flags that clear a field.
type updateFlags struct {
	noScopes, noMeta, noExpiry, defaultLimit, anyAddress bool
}

// updateRequest builds UpdateKey's request: the flags given (set) are the mask.
func updateRequest(id string, set map[string]bool, kf keyFields, u updateFlags) (*keyservicev1.UpdateKeyRequest, error) {
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
	for fl, v := range map[string]string{"name": kf.name, "expires": kf.expires, "rate-limit": kf.rateLimit} {
		if set[fl] && strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("--%s is empty", fl)
		}
	}
	// The common parts are checked as create checks them.
	common := kf
	common.name, common.owner = "-", "-"
	base, err := createRequest(common)
	if err != nil {
		return nil, err
	}
	k := &keyservicev1.Key{Id: id, Name: kf.name, Scopes: base.GetScopes(), Metadata: base.GetMetadata(),
		ExpiresAt: base.GetExpiresAt(), RateLimit: base.GetRateLimit(), AllowedCidrs: kf.cidrs}
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
