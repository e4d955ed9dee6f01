package service

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/outcome"
)

// TestUpdateMaskNamesEachFieldOnce: the mask's paths, in snake_case or
// the JSON form's camelCase, repeated or named by a rate_limit part, reach
// the store as each field once, in the order first named, with the value
// the request gives it; fields outside the mask are not read.
func TestUpdateMaskNamesEachFieldOnce(t *testing.T) {
	t.Parallel()
	rl := &keyservicev1.RateLimit{Limit: 5, Period: durationpb.New(time.Minute)}
	key := &keyservicev1.Key{Id: strings.ToUpper(goodID), Name: "new", Owner: "ignored", Scopes: []string{"a:b"}, RateLimit: rl,
		AllowedCidrs: []string{"::ffff:10.0.0.0/104", "10.0.0.0/8", " 2001:db8::/32 "}, Enabled: true}
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"name"}, []string{"name"}},
		{[]string{"name", "name"}, []string{"name"}},
		{[]string{"scopes", "name", "scopes"}, []string{"scopes", "name"}},
		{[]string{"allowedCidrs", "allowed_cidrs"}, []string{"allowed_cidrs"}},
		{[]string{"rate_limit.limit", "rate_limit.period", "rateLimit"}, []string{"rate_limit"}},
		{[]string{"enabled", "rate_limit"}, []string{"enabled", "rate_limit"}},
	}
	for _, tt := range tests {
		st := newFakeStore()
		s := newTestService(t, st, nil, nil)
		if _, err := s.UpdateKey(context.Background(), &keyservicev1.UpdateKeyRequest{Key: key, UpdateMask: mask(tt.paths...)}); err != nil {
			t.Fatalf("%v: %v", tt.paths, err)
		}
		u := st.update
		if !slices.Equal(u.Fields, tt.want) {
			t.Errorf("mask %v: fields %v, want %v", tt.paths, u.Fields, tt.want)
		}
		if slices.Contains(u.Fields, "name") != (u.Name == "new") {
			t.Errorf("mask %v: name %q", tt.paths, u.Name)
		}
		if slices.Contains(u.Fields, "rate_limit") && (u.RateLimit == nil || *u.RateLimit != apikey.RateLimit{Limit: 5, Period: time.Minute, Burst: 5}) {
			t.Errorf("mask %v: rate limit %+v (burst 0 is the limit)", tt.paths, u.RateLimit)
		}
		if slices.Contains(u.Fields, "allowed_cidrs") {
			// IPv4-mapped is IPv4, duplicates dropped, spaces trimmed.
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
			if !slices.Equal(u.AllowedCIDRs, want) {
				t.Errorf("mask %v: CIDRs %v, want %v", tt.paths, u.AllowedCIDRs, want)
			}
		}
		if slices.Contains(u.Fields, "enabled") != u.Enabled {
			t.Errorf("mask %v: enabled %v", tt.paths, u.Enabled)
		}
		if c := st.Calls(); !slices.Equal(c, []string{"UpdateKey"}) {
			t.Errorf("mask %v: store calls %v", tt.paths, c)
		}
	}
}

// TestBoundsAreInclusive: every limit of a request is reached, not only
// approached: 200-character names (counted in characters), 64 scopes of
// 128, 32 metadata entries, 64 CIDRs, 1000 keys a page, a 30-day grace,
// the largest cost; and an empty page_size is the default of 100.
func TestBoundsAreInclusive(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	s := newTestService(t, st, &fakeValidator{res: stateOf(&apikey.Key{Enabled: true}, outcome.Valid)}, nil)
	ctx := context.Background()
	meta := nMeta(32)
	meta[strings.Repeat("k", 64)] = strings.Repeat("é", 1024)
	delete(meta, "k0")
	req := &keyservicev1.CreateKeyRequest{
		Name: strings.Repeat("é", 200), Owner: strings.Repeat("o", 200), Metadata: meta,
		Scopes:       nStrings(64, func(i int) string { return strings.Repeat(string(rune('a'+i%26)), 127) + string(rune('A'+i/26)) }),
		AllowedCidrs: nStrings(64, func(i int) string { return netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String() + "/16" }),
		RateLimit:    &keyservicev1.RateLimit{Limit: 1_000_000_000, Period: durationpb.New(24 * time.Hour), Burst: 1_000_000_000},
	}
	if _, err := s.CreateKey(ctx, req); err != nil {
		t.Fatalf("create at every bound: %v", err)
	}
	if _, err := s.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: goodID, GracePeriod: durationpb.New(maxGrace)}); err != nil {
		t.Fatalf("30-day grace: %v", err)
	}
	for size, want := range map[int32]int{0: 100, 1: 1, 1000: 1000} {
		if _, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{PageSize: size}); err != nil || st.list.Limit != want {
			t.Fatalf("page_size %d: limit %d, %v; want %d", size, st.list.Limit, err, want)
		}
		if _, err := s.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{PageSize: size}); err != nil || st.audit.Limit != want {
			t.Fatalf("audit page_size %d: limit %d, %v; want %d", size, st.audit.Limit, err, want)
		}
	}
	if _, err := s.Validate(ctx, &keyservicev1.ValidateRequest{Key: "k", Cost: ptr[int32](maxCost)}); err != nil {
		t.Fatalf("cost %d: %v", maxCost, err)
	}
}

// TestPageTokensWorkOnlyForTheirListAndFilters: a page token continues
// the list and filters that made it (any spelling of a key_id being one
// filter), and is refused, naming why, for another list or other filters.
func TestPageTokensWorkOnlyForTheirListAndFilters(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	st.next = apikey.Cursor{CreatedAt: testNow, ID: uuid.MustParse(goodID)}
	s := newTestService(t, st, nil, nil)
	ctx := context.Background()
	keysPage, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme"})
	if err != nil || keysPage.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", keysPage, err)
	}
	auditPage, err := s.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: goodID, Actor: "ci"})
	if err != nil || auditPage.GetNextPageToken() == "" {
		t.Fatalf("first audit page: %v %v", auditPage, err)
	}
	keysToken, auditToken := keysPage.GetNextPageToken(), auditPage.GetNextPageToken()

	if _, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: keysToken}); err != nil || st.list.After != st.next {
		t.Fatalf("next page: after %v, %v", st.list.After, err)
	}
	if _, err := s.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: strings.ToUpper(goodID), Actor: "ci", PageToken: auditToken}); err != nil || st.audit.After != st.next {
		t.Fatalf("next audit page with the key_id in capitals: after %v, %v", st.audit.After, err)
	}
	other := apikey.NewCursorCodec([]byte("another replica's tokens")).Encode(apikey.Page{List: apikey.ListKeys, Filters: []string{"acme"}}, st.next)
	for name, tc := range map[string]struct {
		call func() error
		msg  string
	}{
		"keys token in audit list": {func() error {
			_, err := s.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: goodID, Actor: "ci", PageToken: keysToken})
			return err
		}, "page_token: was issued for another list: pass the next_page_token of a previous ListAuditEvents response"},
		"audit token in keys list": {func() error {
			_, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: auditToken})
			return err
		}, "page_token: was issued for another list: pass the next_page_token of a previous ListKeys response"},
		"other owner": {func() error {
			_, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "other", PageToken: keysToken})
			return err
		}, "page_token: was issued for other filters or another order: send it with the same filters (and newest_first) as the request that returned it, or start again without a page_token"},
		"other actor": {func() error {
			_, err := s.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: goodID, PageToken: auditToken})
			return err
		}, "page_token: was issued for other filters"},
		"malformed": {func() error {
			_, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: "AAAA"})
			return err
		}, "page_token: is malformed; pass the next_page_token of a previous response"},
		"signed with another key": {func() error {
			_, err := s.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: "acme", PageToken: other})
			return err
		}, "page_token: is malformed"},
	} {
		calls := len(st.Calls())
		if s := statusOf(tc.call()); s.Code() != codes.InvalidArgument || !strings.HasPrefix(s.Message(), tc.msg) {
			t.Errorf("%s: %v %q, want %q", name, s.Code(), s.Message(), tc.msg)
		}
		if len(st.Calls()) != calls {
			t.Errorf("%s: a refused token reached the store", name)
		}
	}
}
