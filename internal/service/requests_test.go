package service

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/outcome"
)

const (
	goodID    = "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"
	updatable = "name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs"
	uuidRule  = "must be a UUID such as 0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a"
)

var testNow = time.Unix(1_790_000_000, 0).UTC()

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func nStrings(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func nMeta(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func create(mod func(r *keyservicev1.CreateKeyRequest)) func(*Service) error {
	return func(s *Service) error {
		r := &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"}
		mod(r)
		_, err := s.CreateKey(context.Background(), r)
		return err
	}
}

func update(k *keyservicev1.Key, paths ...string) func(*Service) error {
	return func(s *Service) error {
		req := &keyservicev1.UpdateKeyRequest{Key: k}
		if paths != nil {
			req.UpdateMask = mask(paths...)
		}
		_, err := s.UpdateKey(context.Background(), req)
		return err
	}
}

func rotate(r *keyservicev1.RotateKeyRequest) func(*Service) error {
	return func(s *Service) error { _, err := s.RotateKey(context.Background(), r); return err }
}

func validateCall(r *keyservicev1.ValidateRequest) func(*Service) error {
	return func(s *Service) error { _, err := s.Validate(context.Background(), r); return err }
}

// TestBadRequestsAreInvalidArgumentNamingTheFieldAndReachNothing: every
// request check answers INVALID_ARGUMENT with its documented message and a
// BadRequest detail naming the field, before the store (or, for Validate,
// the validation path) is reached.
func TestBadRequestsAreInvalidArgumentNamingTheFieldAndReachNothing(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("é", n) } // runes, not bytes, are counted
	past := timestamppb.New(testNow.Add(-time.Second))
	tests := []struct {
		name  string
		call  func(*Service) error
		field string
		msg   string // the whole message after "field: " starts with it
	}{
		// CreateKey: names, owners, scopes, metadata, limits, expiry, CIDRs, format.
		{"create: no name", create(func(r *keyservicev1.CreateKeyRequest) { r.Name = "" }), "name", "is required"},
		{"create: blank name", create(func(r *keyservicev1.CreateKeyRequest) { r.Name = " \t" }), "name", "is required"},
		{"create: name of 201", create(func(r *keyservicev1.CreateKeyRequest) { r.Name = long(201) }), "name", "must be at most 200 characters, got 201"},
		{"create: name with U+202E", create(func(r *keyservicev1.CreateKeyRequest) { r.Name = "a\u202eb" }), "name", "must contain " + printableRule},
		{"create: name with U+2028", create(func(r *keyservicev1.CreateKeyRequest) { r.Name = "a\u2028b" }), "name", "must contain " + printableRule},
		{"create: no owner", create(func(r *keyservicev1.CreateKeyRequest) { r.Owner = "" }), "owner", "is required"},
		{"create: owner of 201", create(func(r *keyservicev1.CreateKeyRequest) { r.Owner = long(201) }), "owner", "must be at most 200 characters, got 201"},
		{"create: owner with a tab", create(func(r *keyservicev1.CreateKeyRequest) { r.Owner = "a\tb" }), "owner", "must contain"},
		{"create: 65 scopes", create(func(r *keyservicev1.CreateKeyRequest) {
			r.Scopes = nStrings(65, func(i int) string { return fmt.Sprint("s", i) })
		}), "scopes", "at most 64 scopes, got 65"},
		{"create: empty scope", create(func(r *keyservicev1.CreateKeyRequest) { r.Scopes = []string{"read", ""} }), "scopes[1]", "a scope is 1 to 128 of the characters"},
		{"create: scope with a comma", create(func(r *keyservicev1.CreateKeyRequest) { r.Scopes = []string{"read,admin"} }), "scopes[0]", "a scope is 1 to 128"},
		{"create: scope with a space", create(func(r *keyservicev1.CreateKeyRequest) { r.Scopes = []string{"a b"} }), "scopes[0]", "a scope is 1 to 128"},
		{"create: scope with é", create(func(r *keyservicev1.CreateKeyRequest) { r.Scopes = []string{"lecture-é"} }), "scopes[0]", "a scope is 1 to 128"},
		{"create: scope of 129", create(func(r *keyservicev1.CreateKeyRequest) { r.Scopes = []string{strings.Repeat("s", 129)} }), "scopes[0]", "a scope is 1 to 128"},
		{"create: 33 metadata", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = nMeta(33) }), "metadata", "at most 32 entries, got 33"},
		{"create: empty metadata key", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = map[string]string{"": "v"} }), "metadata", "keys must be 1 to 64 characters"},
		{"create: metadata key of 65", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = map[string]string{long(65): "v"} }), "metadata", "keys must be 1 to 64 characters"},
		{"create: metadata value of 1025", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = map[string]string{"k": long(1025)} }), "metadata", `value of "k" is over 1024 characters`},
		{"create: metadata value with CR LF", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = map[string]string{"team": "a\r\nX-Evil: 1"} }), "metadata", "keys and values must contain " + printableRule},
		{"create: metadata key with ESC", create(func(r *keyservicev1.CreateKeyRequest) { r.Metadata = map[string]string{"\x1b[31m": "v"} }), "metadata", "keys and values must contain"},
		{"create: limit without period", create(func(r *keyservicev1.CreateKeyRequest) { r.RateLimit = &keyservicev1.RateLimit{Limit: 5} }), "rate_limit", `period is required, for example "60s"`},
		{"create: negative limit", create(func(r *keyservicev1.CreateKeyRequest) {
			r.RateLimit = &keyservicev1.RateLimit{Limit: -1, Period: durationpb.New(time.Second)}
		}), "rate_limit", "limit and burst must not be negative"},
		{"create: zero limit", create(func(r *keyservicev1.CreateKeyRequest) {
			r.RateLimit = &keyservicev1.RateLimit{Period: durationpb.New(time.Second)}
		}), "rate_limit", "limit must be between 1 and 1000000000, got 0"},
		{"create: period of 25h", create(func(r *keyservicev1.CreateKeyRequest) {
			r.RateLimit = &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(25 * time.Hour)}
		}), "rate_limit", "period must be between 1ms and 24h"},
		{"create: expiry in the past", create(func(r *keyservicev1.CreateKeyRequest) { r.ExpiresAt = past }), "expires_at", "must be in the future"},
		{"create: expiry now", create(func(r *keyservicev1.CreateKeyRequest) { r.ExpiresAt = timestamppb.New(testNow) }), "expires_at", "must be in the future"},
		{"create: expiry not a time", create(func(r *keyservicev1.CreateKeyRequest) {
			r.ExpiresAt = &timestamppb.Timestamp{Seconds: 1, Nanos: 2_000_000_000}
		}), "expires_at", "is not a valid time"},
		{"create: an address as a CIDR", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"10.1.2.3"} }),
			"allowed_cidrs[0]", `"10.1.2.3" is an address, not a CIDR: write it as 10.1.2.3/32 (IPv4) or /128 (IPv6)`},
		{"create: not a CIDR", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"10.0.0.0/8", "10.0.0/33"} }),
			"allowed_cidrs[1]", `"10.0.0/33" is not an IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32`},
		{"create: CIDR with host bits", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"10.1.2.3/8"} }),
			"allowed_cidrs[0]", `"10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`},
		{"create: IPv6 CIDR with host bits", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"2001:db8::1/32"} }),
			"allowed_cidrs[0]", `"2001:db8::1/32" has host bits set; did you mean 2001:db8::/32?`},
		{"create: CIDR with a zone", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"fe80::%eth0/64"} }),
			"allowed_cidrs[0]", `"fe80::%eth0/64" has a zone; zones are not allowed`},
		{"create: address with a zone", create(func(r *keyservicev1.CreateKeyRequest) { r.AllowedCidrs = []string{"fe80::1%eth0"} }),
			"allowed_cidrs[0]", `"fe80::1%eth0" has a zone; zones are not allowed`},
		{"create: 65 CIDRs", create(func(r *keyservicev1.CreateKeyRequest) {
			r.AllowedCidrs = nStrings(65, func(i int) string { return fmt.Sprintf("10.0.%d.0/24", i) })
		}), "allowed_cidrs", "at most 64 CIDRs, got 65"},
		{"create: signed without signing keys", create(func(r *keyservicev1.CreateKeyRequest) { r.Format = keyservicev1.Format_FORMAT_SIGNED }),
			"format", "signed keys need signing keys on the server (KEYSERVICE_SIGNING_KEYS)"},
		{"create: unknown format", create(func(r *keyservicev1.CreateKeyRequest) { r.Format = 99 }), "format", "must be FORMAT_CHECKSUM or FORMAT_SIGNED, got 99"},
		{"create: bad request_id", create(func(r *keyservicev1.CreateKeyRequest) { r.RequestId = "retry-1" }), "request_id", "must be a UUID such as"},
		{"create: nil request_id", create(func(r *keyservicev1.CreateKeyRequest) { r.RequestId = "00000000-0000-0000-0000-000000000000" }), "request_id", "must be a UUID such as"},

		// Ids, in every spelling uuid.Parse takes but the canonical one.
		{"get: no id", func(s *Service) error {
			_, err := s.GetKey(context.Background(), &keyservicev1.GetKeyRequest{})
			return err
		}, "id", "is required"},
		{"get: not a uuid", func(s *Service) error {
			_, err := s.GetKey(context.Background(), &keyservicev1.GetKeyRequest{Id: "12345"})
			return err
		}, "id", uuidRule},
		{"get: uuid without dashes", func(s *Service) error {
			_, err := s.GetKey(context.Background(), &keyservicev1.GetKeyRequest{Id: strings.ReplaceAll(goodID, "-", "")})
			return err
		}, "id", uuidRule},
		{"get: urn uuid", func(s *Service) error {
			_, err := s.GetKey(context.Background(), &keyservicev1.GetKeyRequest{Id: "urn:uuid:" + goodID})
			return err
		}, "id", uuidRule},
		{"revoke: braced uuid", func(s *Service) error {
			_, err := s.RevokeKey(context.Background(), &keyservicev1.RevokeKeyRequest{Id: "{" + goodID + "}"})
			return err
		}, "id", uuidRule},
		{"revoke: bad request_id", func(s *Service) error {
			_, err := s.RevokeKey(context.Background(), &keyservicev1.RevokeKeyRequest{Id: goodID, RequestId: "x"})
			return err
		}, "request_id", "must be a UUID"},

		// RotateKey.
		{"rotate: no id", rotate(&keyservicev1.RotateKeyRequest{}), "id", "is required"},
		{"rotate: grace over 30 days", rotate(&keyservicev1.RotateKeyRequest{Id: goodID, GracePeriod: durationpb.New(30*24*time.Hour + time.Second)}),
			"grace_period", "must be between 0s and 30 days (2592000s), got 720h0m1s"},
		{"rotate: negative grace", rotate(&keyservicev1.RotateKeyRequest{Id: goodID, GracePeriod: durationpb.New(-time.Second)}),
			"grace_period", "must be between 0s and 30 days"},
		{"rotate: grace not a duration", rotate(&keyservicev1.RotateKeyRequest{Id: goodID, GracePeriod: &durationpb.Duration{Seconds: 1, Nanos: -1}}),
			"grace_period", "is not a valid duration"},
		{"rotate: unknown format", rotate(&keyservicev1.RotateKeyRequest{Id: goodID, Format: 7}), "format", "must be FORMAT_CHECKSUM or FORMAT_SIGNED, got 7"},

		// UpdateKey: ids and masks, then each field's own check.
		{"update: no key", update(nil, "name"), "key", "is required: the key's new fields, with key.id"},
		{"update: no key.id", update(&keyservicev1.Key{Name: "x"}, "name"), "key.id", "is required"},
		{"update: bad key.id", update(&keyservicev1.Key{Id: "nope", Name: "x"}, "name"), "key.id", uuidRule},
		{"update: no mask", update(&keyservicev1.Key{Id: goodID, Name: "x"}), "update_mask", "is required: name the fields to change among " + updatable},
		{"update: unknown path", update(&keyservicev1.Key{Id: goodID}, "colour"), "update_mask", `"colour" cannot be updated; updatable fields are ` + updatable},
		{"update: immutable path", update(&keyservicev1.Key{Id: goodID, Name: "m", Hint: "x"}, "name", "hint"), "update_mask", `"hint" cannot be updated`},
		{"update: output-only path", update(&keyservicev1.Key{Id: goodID}, "revoked_at"), "update_mask", `"revoked_at" cannot be updated`},
		{"update: a good path then an unknown one", update(&keyservicev1.Key{Id: goodID, Name: "x"}, "name", "name", "Colour"), "update_mask", `"Colour" cannot be updated`},
		{"update: unknown sub-path", update(&keyservicev1.Key{Id: goodID}, "rate_limit.bogus"), "update_mask", `"rate_limit.bogus" cannot be updated`},
		{"update: sub-path without the limit", update(&keyservicev1.Key{Id: goodID}, "rate_limit.burst"), "update_mask", `"rate_limit.burst" needs key.rate_limit (the whole rate_limit is replaced)`},
		{"update: empty name", update(&keyservicev1.Key{Id: goodID}, "name"), "key.name", "is required"},
		{"update: name with U+200B", update(&keyservicev1.Key{Id: goodID, Name: "a\u200bb"}, "name"), "key.name", "must contain"},
		{"update: bad scope", update(&keyservicev1.Key{Id: goodID, Scopes: []string{"ok", "no way"}}, "scopes"), "key.scopes[1]", "a scope is 1 to 128"},
		{"update: 33 metadata", update(&keyservicev1.Key{Id: goodID, Metadata: nMeta(33)}, "metadata"), "key.metadata", "at most 32 entries, got 33"},
		{"update: past expiry", update(&keyservicev1.Key{Id: goodID, ExpiresAt: past}, "expiresAt"), "expires_at", "must be in the future"},
		{"update: limit without period", update(&keyservicev1.Key{Id: goodID, RateLimit: &keyservicev1.RateLimit{Limit: 3}}, "rate_limit"), "rate_limit", "period is required"},
		{"update: bad CIDR", update(&keyservicev1.Key{Id: goodID, AllowedCidrs: []string{"10.0.0.0/8", "10.0.0/33"}}, "allowed_cidrs"), "key.allowed_cidrs[1]", `"10.0.0/33" is not an IPv4 or IPv6 CIDR`},
		{"update: CIDR with host bits", update(&keyservicev1.Key{Id: goodID, AllowedCidrs: []string{"10.1.2.3/8"}}, "allowedCidrs"), "key.allowed_cidrs[0]", `"10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`},
		{"update: bad request_id", func(s *Service) error {
			_, err := s.UpdateKey(context.Background(), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: goodID, Name: "x"}, UpdateMask: mask("name"), RequestId: "1"})
			return err
		}, "request_id", "must be a UUID"},

		// Lists: page sizes, filters.
		{"list: page size -1", func(s *Service) error {
			_, err := s.ListKeys(context.Background(), &keyservicev1.ListKeysRequest{PageSize: -1})
			return err
		}, "page_size", "must be between 0 and 1000, got -1"},
		{"list: page size 1001", func(s *Service) error {
			_, err := s.ListKeys(context.Background(), &keyservicev1.ListKeysRequest{PageSize: 1001})
			return err
		}, "page_size", "must be between 0 and 1000, got 1001"},
		{"list: owner of 201", func(s *Service) error {
			_, err := s.ListKeys(context.Background(), &keyservicev1.ListKeysRequest{Owner: long(201)})
			return err
		}, "owner", "must be at most 200 characters, got 201"},
		{"list: owner with U+202E", func(s *Service) error {
			_, err := s.ListKeys(context.Background(), &keyservicev1.ListKeysRequest{Owner: "\u202e"})
			return err
		}, "owner", "must contain"},
		{"audit: page size 5000", func(s *Service) error {
			_, err := s.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{PageSize: 5000})
			return err
		}, "page_size", "must be between 0 and 1000, got 5000"},
		{"audit: bad key_id", func(s *Service) error {
			_, err := s.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{KeyId: "nope"})
			return err
		}, "key_id", uuidRule},
		{"audit: actor with a newline", func(s *Service) error {
			_, err := s.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{Actor: "ci\nadmin"})
			return err
		}, "actor", "must contain"},

		// Validate's own checks come before the validation path.
		{"validate: no key", validateCall(&keyservicev1.ValidateRequest{}), "key", "is required"},
		{"validate: cost -1", validateCall(&keyservicev1.ValidateRequest{Key: "k", Cost: ptr[int32](-1)}), "cost", "must be between 0 and 1000000, got -1"},
		{"validate: cost over the bound", validateCall(&keyservicev1.ValidateRequest{Key: "k", Cost: ptr[int32](maxCost + 1)}), "cost", "must be between 0 and 1000000, got 1000001"},
		{"validate: client_ip not an address", validateCall(&keyservicev1.ValidateRequest{Key: "k", ClientIp: "10.0.0.0/8"}), "client_ip", "must be an IPv4 or IPv6 address"},
		{"validate: empty required scope", validateCall(&keyservicev1.ValidateRequest{Key: "k", RequiredScopes: []string{"read", ""}}), "required_scopes[1]", "a scope is 1 to 128"},
		{"validate: 65 required scopes", validateCall(&keyservicev1.ValidateRequest{Key: "k",
			RequiredScopes: nStrings(65, func(i int) string { return fmt.Sprint("s", i) })}), "required_scopes", "at most 64 scopes, got 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, v := newFakeStore(), &fakeValidator{res: stateOf(nil, outcome.NotFound)}
			err := tt.call(newTestService(t, st, v, &fakeBudgets{}))
			s := statusOf(err)
			if s.Code() != codes.InvalidArgument || !strings.HasPrefix(s.Message(), tt.field+": "+tt.msg) {
				t.Fatalf("got %v %q\nwant InvalidArgument %q", s.Code(), s.Message(), tt.field+": "+tt.msg+"…")
			}
			var fv []*errdetails.BadRequest_FieldViolation
			for _, d := range s.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					fv = append(fv, br.GetFieldViolations()...)
				}
			}
			if len(fv) != 1 || fv[0].GetField() != tt.field || !strings.HasPrefix(fv[0].GetDescription(), tt.msg) {
				t.Fatalf("field violations %v, want one for %q", fv, tt.field)
			}
			if c := st.Calls(); len(c) != 0 || v.calls != 0 {
				t.Fatalf("a refused request reached the store %v or the validation path (%d calls)", c, v.calls)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
